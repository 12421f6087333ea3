"""Serving latency and throughput on loopback: in-process, REST and gRPC.

    python -m bench.serving [--serving-dir runs/local/serving] [--model collaborative_filtering]

Starts serving/server.py on free ports over the pushed models (or measures a running server,
e.g. real TF Serving, given `--rest-port`/`--grpc-port`), then for `recommend` (k=10),
`recommend_new_user` (k=10, 10 ratings sent), `predict_rating` (batch 1 and 100) and
`predict_rating_new_user` (one movie, 10 ratings sent) measures p50/p95/p99 latency and
requests/s over REST and gRPC at concurrency 1, 8 and 32 (each client its own connection with
one request in flight, back to back for `--seconds`), plus the signature called in-process as
the floor. The load generator is h2load (Debian's nghttp2-client; `make bench-serving` installs
it), which in C leaves the two cores to the server as remote clients would; `--load-generator
python` uses an asyncio one instead (the numbers then include its share of the cores). Writes
bench/results/serving.md (and .json) with the command, date, machine and commit.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import gc
import json
import os
import subprocess
import sys
import time

import numpy as np

from bench import provenance

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
CONCURRENCY = (1, 8, 32)
GENERATORS = {
    'h2load': 'h2load (nghttp2, in C): each connection one request in flight, the same request '
              'body for a whole cell (user or pairs from the Transform vocabulary)',
    'python': 'asyncio in this process (one thread; it shares the two cores with the server): '
              'each connection one request in flight, 200 different pre-built requests',
}
# Floors from the serving issue (2 cores, ML-100K models).
TARGETS = {'in-process recommend p50 ms': 1.0, 'REST recommend p99 ms at 8': 10.0,
           'gRPC recommend requests/s at 32': 1000.0}


def _calls(users, movies):
  """name -> (signature, inputs builder(i)): the measured requests, varied per request."""
  def recommend(i):
    return 'recommend', {'user_id': [users[i % len(users)]], 'k': [10]}

  def rating(batch):
    def build(i):
      picks = [(i * batch + j) for j in range(batch)]
      return 'predict_rating', {'user_id': [users[p % len(users)] for p in picks],
                                'movie_id': [movies[p % len(movies)] for p in picks]}
    return build
  def first_ratings(i):  # a new user's first 10 ratings, folded in by the signature
    return {'rated_movie_ids': [[movies[(i * 10 + j) % len(movies)] for j in range(10)]],
            'rated_ratings': [[float(1 + (i + j) % 5) for j in range(10)]]}

  def new_user(i):
    return 'recommend_new_user', {'k': [10], **first_ratings(i)}

  def new_user_rating(i):
    return 'predict_rating_new_user', {'movie_id': [movies[(i * 7) % len(movies)]],
                                       **first_ratings(i)}
  return {'recommend k=10': recommend, 'recommend_new_user k=10, 10 rated': new_user,
          'predict_rating x1': rating(1), 'predict_rating x100': rating(100),
          'predict_rating_new_user x1, 10 rated': new_user_rating}


def _percentiles(latencies):
  ms = np.array(latencies) * 1000.0
  return {'p50_ms': float(np.percentile(ms, 50)), 'p95_ms': float(np.percentile(ms, 95)),
          'p99_ms': float(np.percentile(ms, 99))}


def in_process(model_dir, calls, seconds):
  """The signature on the loaded SavedModel: the floor under any server."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from serving.client import loaded_inputs  # pylint: disable=import-outside-toplevel
  tf.config.threading.set_intra_op_parallelism_threads(1)  # as serving/server.py runs it
  tf.config.threading.set_inter_op_parallelism_threads(1)
  loaded = tf.saved_model.load(model_dir)
  gc.collect()  # as serving/model_store.py leaves the heap after a load
  gc.freeze()
  results = {}
  for name, build in calls.items():
    signature, _ = build(0)
    function = loaded.signatures[signature]
    prepared = [loaded_inputs(function, build(i)[1]) for i in range(200)]  # as a client sends
    for request in prepared[:20]:
      function(**request)
    latencies, i = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
      start = time.perf_counter()
      function(**prepared[i % len(prepared)])
      latencies.append(time.perf_counter() - start)
      i += 1
    results[name] = {**_percentiles(latencies), 'requests_per_s': len(latencies) / seconds,
                     'requests': len(latencies)}
  return results


def _prepared_requests(model, rest_port, calls, count=200):
  """Per call: `count` REST bodies and gRPC PredictRequests, built before any timing.

  Like TF Serving's own load tests, the load generator sends pre-built requests, so the
  numbers are the server's (serving/client.py adds its own encoding on top).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
  from serving.client import Client, _json_column  # pylint: disable=import-outside-toplevel
  prepared = {}
  with Client(model, port=rest_port) as client:
    for name, build in calls.items():
      bodies, protos = [], []
      for i in range(count):
        signature, inputs = build(i)
        full = client.request_inputs(signature, inputs)
        bodies.append(json.dumps({'signature_name': signature, 'inputs': {
            k: _json_column(v) for k, v in full.items()}}).encode())
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = model, signature
        for key, value in full.items():
          request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        protos.append(request)
      prepared[name] = (bodies, protos)
  return prepared


async def _rest_sender(port, path):
  """A keep-alive HTTP/1.1 connection on asyncio streams: send(body) -> HTTP status is 200."""
  import asyncio  # pylint: disable=import-outside-toplevel
  reader, writer = await asyncio.open_connection('127.0.0.1', port)
  head = (f'POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
          'Content-Length: ')

  async def send(body):
    writer.write(f'{head}{len(body)}\r\n\r\n'.encode() + body)
    status_line = await reader.readline()
    length = 0
    while True:
      line = await reader.readline()
      if line in (b'\r\n', b''):
        break
      if line.lower().startswith(b'content-length:'):
        length = int(line.split(b':', 1)[1])
    await reader.readexactly(length)
    return status_line.split(b' ')[1] == b'200'

  async def close():
    writer.close()
  return send, close


async def _grpc_sender(port):
  import grpc  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=import-outside-toplevel
  channel = grpc.aio.insecure_channel(f'127.0.0.1:{port}')
  stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

  async def send(request):
    await stub.Predict(request, timeout=60)
    return True

  async def close():
    await channel.close()
  return send, close


async def _load(make_sender, requests_, concurrency, seconds):
  """`concurrency` clients, each sending back to back for `seconds`: (latencies, errors)."""
  import asyncio  # pylint: disable=import-outside-toplevel
  senders = [await make_sender() for _ in range(concurrency)]
  for send, _ in senders:  # connections open and warm before timing
    await send(requests_[0])
  latencies, errors = [], [0]
  end_at = time.monotonic() + seconds

  async def client(index):
    send, i = senders[index][0], index * 7
    while time.monotonic() < end_at:
      began = time.perf_counter()
      try:
        ok = await send(requests_[i % len(requests_)])
      except Exception:  # counted, not hidden
        ok = False
      latencies.append(time.perf_counter() - began)
      errors[0] += not ok
      i += 1

  await asyncio.gather(*(client(k) for k in range(concurrency)))
  for _, close in senders:
    await close()
  return latencies, errors[0]


def _h2load(url, body: bytes, headers, http1: bool, concurrency: int, seconds: float):
  """One cell measured by h2load (nghttp2's load generator, in C): (latencies, errors).

  `concurrency` connections, each with one request in flight, send `body` back to back for
  `seconds` after a one-second warm-up; per-request times come from its --log-file. A
  load generator in C leaves the cores to the server, as clients on other machines would.
  """
  import tempfile  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory() as folder:
    body_file, log_file = os.path.join(folder, 'body'), os.path.join(folder, 'log')
    with open(body_file, 'wb') as f:
      f.write(body)
    command = ['h2load', '-c', str(concurrency), '-m', '1', '-D', f'{seconds * 1000:.0f}ms',
               '--warm-up-time', '1', '-d', body_file, '--log-file', log_file, url]
    if http1:
      command.insert(1, '--h1')
    for header in headers:
      command[1:1] = ['-H', header]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not os.path.exists(log_file):
      raise RuntimeError(f'h2load failed: {result.stdout[-2000:]}{result.stderr[-2000:]}')
    with open(log_file, encoding='utf-8') as f:  # start (us), HTTP status, duration (us)
      rows = [line.split('\t') for line in f if line.strip()]
  latencies = [int(row[2]) / 1e6 for row in rows]
  errors = sum(row[1] != '200' for row in rows)
  return latencies, errors


def _grpc_frame(request) -> bytes:
  """A unary gRPC message on the wire: not compressed, 4-byte big-endian length, the proto."""
  payload = request.SerializeToString()
  return b'\x00' + len(payload).to_bytes(4, 'big') + payload


def _checked_grpc(port, request) -> None:
  """The request gets an OK answer (h2load sees HTTP 200 only, not the gRPC status)."""
  import grpc  # pylint: disable=import-outside-toplevel
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=import-outside-toplevel
  with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
    prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)


def over_network(model, rest_port, grpc_port, calls, seconds, generator):
  """Every (protocol, call, concurrency) cell, measured by `generator` ('h2load' or 'python')."""
  import asyncio  # pylint: disable=import-outside-toplevel
  prepared = _prepared_requests(model, rest_port, calls)
  path = f'/v1/models/{model}:predict'
  makers = {'REST': lambda: _rest_sender(rest_port, path), 'gRPC': lambda: _grpc_sender(grpc_port)}
  results = []
  for protocol in ('REST', 'gRPC'):
    for name in calls:
      requests_ = prepared[name][0 if protocol == 'REST' else 1]
      for concurrency in CONCURRENCY:
        if generator == 'python':
          latencies, errors = asyncio.run(
              _load(makers[protocol], requests_, concurrency, seconds))
        elif protocol == 'REST':
          latencies, errors = _h2load(f'http://127.0.0.1:{rest_port}{path}', requests_[0],
                                      ['content-type: application/json'], True, concurrency,
                                      seconds)
        else:
          _checked_grpc(grpc_port, requests_[0])
          latencies, errors = _h2load(
              f'http://127.0.0.1:{grpc_port}/tensorflow.serving.PredictionService/Predict',
              _grpc_frame(requests_[0]), ['content-type: application/grpc', 'te: trailers'],
              False, concurrency, seconds)
          _checked_grpc(grpc_port, requests_[0])
        row = {'protocol': protocol, 'call': name, 'concurrency': concurrency,
               **_percentiles(latencies), 'requests_per_s': len(latencies) / seconds,
               'requests': len(latencies), 'errors': errors}
        print(f"{protocol:4s} {name:20s} c={concurrency:2d}  p50 {row['p50_ms']:6.2f} ms  "
              f"p99 {row['p99_ms']:6.2f} ms  {row['requests_per_s']:7.0f} req/s  "
              f"errors {errors}", flush=True)
        results.append(row)
  return results


def _start_server(serving_dir, workers):
  from serving import model_config  # pylint: disable=import-outside-toplevel
  config = model_config.write(serving_dir, sorted(os.listdir(serving_dir)))
  process = subprocess.Popen([sys.executable, '-m', 'serving.server', '--model_config_file',
                              config, '--port', '0', '--rest_api_port', '0',
                              *(['--workers', str(workers)] if workers else [])],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  from serving.server import ready_ports  # pylint: disable=import-outside-toplevel
  for line in process.stdout:
    if ready_ports(line):
      return (process, *ready_ports(line))
  raise SystemExit('error: the server did not start')


def _markdown(report):
  lines = [
      '# Serving benchmark', '',
      f"Command: `{report['command']}`  ",
      f"Date: {report['date']}  ",
      f"Machine: {report['machine']}  ",
      f"Commit: {report['commit']}  ",
      f"Model: {report['model']} ({report['model_dir']}), server: {report['server']}, "
      f"{report['seconds']} s per cell, loopback.  ",
      f"Load generator: {report['load_generator']}", '',
      '## In-process (the signature on the loaded SavedModel: the floor)', '',
      '| call | p50 ms | p95 ms | p99 ms | calls/s |', '|---|---:|---:|---:|---:|']
  for name, row in report['in_process'].items():
    lines.append(f"| {name} | {row['p50_ms']:.3f} | {row['p95_ms']:.3f} | {row['p99_ms']:.3f} "
                 f"| {row['requests_per_s']:.0f} |")
  lines += ['', '## Over the network', '',
            '| protocol | call | concurrency | p50 ms | p95 ms | p99 ms | requests/s | errors |',
            '|---|---|---:|---:|---:|---:|---:|---:|']
  for row in report['network']:
    lines.append(f"| {row['protocol']} | {row['call']} | {row['concurrency']} | "
                 f"{row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} | "
                 f"{row['requests_per_s']:.0f} | {row['errors']} |")
  lines += provenance.targets_table(report['targets'], 'serving')
  return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--serving-dir', default=os.path.join('runs', 'local', 'serving'))
  parser.add_argument('--model', default='collaborative_filtering')
  parser.add_argument('--seconds', type=float, default=5.0, help='per measured cell')
  parser.add_argument('--rest-port', type=int, help='measure a running server instead')
  parser.add_argument('--grpc-port', type=int)
  parser.add_argument('--workers', type=int,
                      help="the started server's worker processes (default: its own default)")
  parser.add_argument('--load-generator', choices=('h2load', 'python'),
                      help='h2load (nghttp2-client, in C; the default when installed) or the '
                           'asyncio one here, which shares the cores with the server')
  parser.add_argument('--output', default=os.path.join(RESULTS, 'serving.md'))
  args = parser.parse_args(argv)
  import shutil  # pylint: disable=import-outside-toplevel
  generator = args.load_generator or ('h2load' if shutil.which('h2load') else 'python')
  if generator == 'h2load' and not shutil.which('h2load'):
    print('error: h2load is not installed (Debian: apt-get install nghttp2-client)',
          file=sys.stderr)
    return 2
  from serving import model_config  # pylint: disable=import-outside-toplevel
  model_dir = model_config.latest_version_path(os.path.join(args.serving_dir, args.model))
  if model_dir is None:
    print(f'error: no pushed {args.model} under {args.serving_dir}: run `make run` first',
          file=sys.stderr)
    return 2
  # Requests cycle through the first 500 trained users and movies (the Transform vocabularies).
  vocabulary = lambda name: open(os.path.join(model_dir, 'assets', name),
                                 encoding='utf-8').read().split()[:500]
  users, movies = vocabulary('user_id'), vocabulary('movie_id')
  calls = _calls(users, movies)
  print('in-process ...', flush=True)
  floor = in_process(model_dir, calls, args.seconds)
  for name, row in floor.items():
    print(f"in-process {name:20s} p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms",
          flush=True)
  process = None
  if args.rest_port and args.grpc_port:
    rest_port, grpc_port, server = args.rest_port, args.grpc_port, 'running server'
  else:
    process, rest_port, grpc_port = _start_server(args.serving_dir, args.workers)
    from serving.workers import default_count  # pylint: disable=import-outside-toplevel
    server = f'serving/server.py, {args.workers or default_count()} worker process(es)'
  try:
    network = over_network(args.model, rest_port, grpc_port, calls, args.seconds, generator)
  finally:
    if process:
      process.terminate()
      process.wait(timeout=30)
  cell = lambda protocol, call, c: next(r for r in network if r['protocol'] == protocol
                                        and r['call'] == call and r['concurrency'] == c)
  measured = {
      'in-process recommend p50 ms': floor['recommend k=10']['p50_ms'],
      'REST recommend p99 ms at 8': cell('REST', 'recommend k=10', 8)['p99_ms'],
      'gRPC recommend requests/s at 32': cell('gRPC', 'recommend k=10', 32)['requests_per_s'],
  }
  targets = {name: (TARGETS[name], value,
                    value >= TARGETS[name] if 'requests/s' in name else value <= TARGETS[name])
             for name, value in measured.items()}
  report = {'command': 'python -m bench.serving ' + ' '.join(argv if argv is not None
                                                            else sys.argv[1:]),
            'date': provenance.now(),
            'machine': provenance.machine(), 'commit': provenance.commit(), 'model': args.model,
            'model_dir': model_dir, 'server': server, 'seconds': args.seconds,
            'load_generator': GENERATORS[generator],
            'in_process': floor, 'network': network, 'targets': targets}
  provenance.write(args.output, _markdown(report), report)
  print(_markdown(report))
  return 0  # a floor not met is a finding in the results file, not a failed benchmark run


if __name__ == '__main__':
  sys.exit(main())
