"""A local stand-in for `tensorflow_model_server`: the same REST and gRPC API over the pushed models.

    python -m serving.server                      # runs/local/serving/models.config
    python -m serving.server --model_config_file runs/local/serving/models.config \\
        --port 8500 --rest_api_port 8501

Production serves these models with TF Serving (serving/docker-compose.yml, serving/k8s.yaml);
this server exists for machines without it (no Docker, no `tensorflow_model_server` binary). It
takes TF Serving's flag names, loads the SavedModels the way TF Serving does, replays their
warm-up requests, and picks up newly pushed versions without a restart (serving/model_store.py).
It listens on 127.0.0.1 unless `--host` says otherwise and refuses bodies above
`--max_request_bytes`. When both ports are bound it prints one line:
`serving REST on http://HOST:PORT, gRPC on HOST:PORT` (port 0 picks free ports). By default
one worker process per core serves both ports (serving/workers.py): Python's global lock keeps
one process to about one core.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import asyncio
import os
import concurrent.futures
import logging
import signal
import socket
import sys

DEFAULT_CONFIG = os.path.join('runs', 'local', 'serving', 'models.config')
READY = 'serving REST on http://'
LOG_FORMAT = '%(asctime)s %(levelname)s %(message)s'


def ready_ports(line: str):
  """(REST port, gRPC port) from the server's ready line, or None for any other line."""
  if not line.startswith(READY):
    return None
  rest, grpc_address = line.strip()[len('serving REST on '):].split(', gRPC on ')
  return int(rest.rsplit(':', 1)[1]), int(grpc_address.rsplit(':', 1)[1])


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m serving.server', description=__doc__.split('\n')[0],
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  add = parser.add_argument
  add('--port', '--grpc-port', type=int, default=8500, help='gRPC port (0: any free port)')
  add('--rest_api_port', '--rest-api-port', type=int, default=8501,
      help='REST port (0: any free port)')
  add('--host', default='127.0.0.1', help='address to listen on (0.0.0.0: every interface)')
  add('--model_config_file', '--model-config-file', default=None,
      help=f'a ModelServerConfig text proto (default: {DEFAULT_CONFIG}, which make run writes)')
  add('--model_name', '--model-name', help='serve one model (with --model_base_path)')
  add('--model_base_path', '--model-base-path', help='the folder of its numbered versions')
  add('--file_system_poll_wait_seconds', type=float, default=1.0,
      help='how often to look for new versions')
  add('--model_config_file_poll_wait_seconds', type=float, default=0.0,
      help='how often to re-read the model config file (0: never)')
  add('--max_request_bytes', type=int, default=4 * 1024 * 1024,
      help='largest request body (REST) or message (gRPC) accepted')
  add('--grpc_threads', type=int, default=32, help='threads decoding and encoding gRPC calls')
  add('--threads', type=int, default=4,
      help='threads for REST metadata, status and regress calls (predictions use the batcher)')
  add('--max_batch_size', type=int, default=64,
      help='rows of concurrent requests merged into one TensorFlow call (serving/batching.py; '
           '1: no merging)')
  add('--workers', type=int, default=None,
      help='server processes sharing the two ports (serving/workers.py; default: one per core, '
           'at most 4; 1: this process serves)')
  add('--reuse_port', action='store_true', help=argparse.SUPPRESS)  # a worker's ports are shared
  add('--switch_interval_ms', type=float, default=0.5,
      help="Python's GIL switch interval (sys.setswitchinterval), in milliseconds")
  add('--tensorflow_intra_op_parallelism', type=int, default=1,
      help="threads inside one TensorFlow op (0: TensorFlow's default, one per core)")
  add('--tensorflow_inter_op_parallelism', type=int, default=1,
      help="threads running a graph's ops side by side (0: TensorFlow's default)")
  args = parser.parse_args(argv)
  if bool(args.model_name) != bool(args.model_base_path):
    parser.error('--model_name and --model_base_path go together')
  if args.model_name and args.model_config_file:
    parser.error('give either --model_config_file or --model_name/--model_base_path')
  if args.workers is None:
    from serving import workers  # pylint: disable=import-outside-toplevel
    args.workers = workers.default_count() if hasattr(socket, 'SO_REUSEPORT') else 1
  if args.workers < 1:
    parser.error('--workers must be at least 1')
  if args.workers > 1 and not hasattr(socket, 'SO_REUSEPORT'):
    parser.error('--workers above 1 needs SO_REUSEPORT (Linux); use --workers 1')
  return args


def _store(args):
  import tensorflow as tf  # loaded here, after the flags are checked
  # Each request's graph is small: requests run side by side on the request threads, and
  # TensorFlow's own pools (one thread per core each by default) would only add handoffs.
  tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
  tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
  from serving import model_store
  store = _configured_store(args, model_store)
  from serving import batching
  store.batcher = batching.Batcher(max(args.max_batch_size, 1))
  return store


def _config(args):
  """The ModelServerConfig the flags name, checked (ValueError: what is wrong with it)."""
  from serving import model_config  # no TensorFlow: the supervisor checks it before any worker
  if args.model_name:
    if not os.path.isdir(args.model_base_path):
      raise ValueError(f'{args.model_base_path}: no such folder (--model_base_path)')
    return model_config.single_model_config(args.model_name, args.model_base_path)
  path = args.model_config_file or DEFAULT_CONFIG
  if not os.path.isfile(path):
    hint = ' (run `make run` first: it writes it)' if path == DEFAULT_CONFIG else ''
    raise ValueError(f'{path}: no such model config file{hint}')
  return model_config.read_config(path)


def _configured_store(args, model_store):
  config = _config(args)
  if args.model_name:
    return model_store.ModelStore(config, args.file_system_poll_wait_seconds)
  return model_store.ModelStore(config, args.file_system_poll_wait_seconds,
                                config_path=args.model_config_file or DEFAULT_CONFIG,
                                config_poll_seconds=args.model_config_file_poll_wait_seconds)


async def _serve(args, store) -> None:
  import tornado.httpserver
  import tornado.netutil
  from serving import grpc_api
  from serving import rest

  executor = concurrent.futures.ThreadPoolExecutor(args.threads, thread_name_prefix='rest')
  grpc_server, grpc_port = grpc_api.server(store, asyncio.get_running_loop(),
                                           f'{args.host}:{args.port}', args.max_request_bytes,
                                           args.grpc_threads, reuse_port=args.reuse_port)
  http = tornado.httpserver.HTTPServer(
      rest.application(store, executor, args.max_request_bytes),
      # Oversized bodies are read and dropped as they arrive (serving/rest.py answers 413), so
      # the client gets the answer instead of a reset; past 1 GiB the connection is closed.
      max_body_size=max(args.max_request_bytes, 1 << 30))
  sockets = tornado.netutil.bind_sockets(args.rest_api_port, args.host,
                                         reuse_port=args.reuse_port)
  http.add_sockets(sockets)
  grpc_server.start()
  print(f'{READY}{args.host}:{sockets[0].getsockname()[1]}, '
        f'gRPC on {args.host}:{grpc_port}', flush=True)
  stop = asyncio.Event()
  loop = asyncio.get_running_loop()
  for signum in (signal.SIGINT, signal.SIGTERM):
    loop.add_signal_handler(signum, stop.set)
  await stop.wait()
  logging.getLogger('serving').info('stopping')
  http.stop()
  grpc_server.stop(grace=2)
  store.stop()
  executor.shutdown(wait=False)


def _supervise(args, argv) -> int:
  from serving import workers  # pylint: disable=import-outside-toplevel
  logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
  try:
    _config(args)  # once here, not once per worker
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  try:
    supervisor = workers.Supervisor(argv, args.host, args.rest_api_port, args.port, args.workers,
                                    ready_ports, READY)
  except OSError as e:
    print(f'error: cannot listen on {args.host} (REST {args.rest_api_port}, gRPC {args.port}): '
          f'{e.strerror or e}', file=sys.stderr)
    return 2
  return supervisor.run()


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  args = parse_args(argv)
  if args.workers > 1:
    return _supervise(args, argv)
  # A request hops between threads (event loop or gRPC thread -> TensorFlow worker -> back);
  # Python's default 5 ms GIL switch interval would add up to that much to each hop.
  sys.setswitchinterval(args.switch_interval_ms / 1000.0)
  logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT.replace(
      '%(message)s', '[worker %(process)d] %(message)s' if args.reuse_port else '%(message)s'))
  logging.getLogger('tornado.access').setLevel(logging.WARNING)  # no line per request
  try:
    store = _store(args)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  store.start()
  if not any(store.available_versions(name) for name in store.model_names):
    logging.getLogger('serving').warning('no model version is available yet; waiting for one')
  try:
    asyncio.run(_serve(args, store))
  except OSError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
