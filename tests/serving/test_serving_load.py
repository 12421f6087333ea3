"""The local server under concurrent load: 32 client threads (REST and gRPC) for 60 s on
loopback, with a new version pushed (by the pipeline's atomic Pusher) halfway through.
Promised: no failed request, bounded worker memory, and requests after the swap reach the new
version."""

import os
import shutil
import sys
import threading
import time

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.tfx import atomic_pusher
from serving import model_config
from serving.client import Client, ServingError
from tests.conftest import MODELS
from tests.serving.test_serving import MAX_BODY, USER, WORKERS, Server

THREADS, SECONDS = 32, 60
# Worker memory (RSS summed over the workers): under steady load it may grow by at most
# STEADY_GROWTH; after a second version is loaded (and the first unloaded), at most AFTER_PUSH
# times what it was before the push.
STEADY_GROWTH, AFTER_PUSH = 1.10, 1.6
MODEL = 'collaborative_filtering'


def _rss_bytes(pids):
  total = 0
  for pid in pids:
    with open(f'/proc/{pid}/status', encoding='utf-8') as f:
      total += next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmRSS:'))
  return total


def _push(serving_dir, tmp_path):
  """The pipeline's Pusher, pushing a copy of the served model as a new version."""
  base = os.path.join(serving_dir, MODEL)
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'model')
  shutil.copytree(os.path.join(base, max(os.listdir(base), key=int)),
                  os.path.join(model.uri, 'Format-Serving'))
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  blessing.set_int_custom_property('blessed', 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed')
  time.sleep(1.1)  # versions are Unix seconds: the new one must be later
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
  atomic_pusher.Executor().Do(
      {specs.MODEL_KEY: [model], specs.MODEL_BLESSING_KEY: [blessing]},
      {specs.PUSHED_MODEL_KEY: [pushed]},
      {specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)})
  return int(pushed.get_string_custom_property('pushed_version'))


def _served_version(port):
  with grpc.insecure_channel(f'127.0.0.1:{port}') as channel:
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL, 'similar_movies'
    request.inputs['movie_id'].CopyFrom(tf.make_tensor_proto(['50']))
    request.inputs['k'].CopyFrom(tf.make_tensor_proto([2], dtype=tf.int32))
    answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request,
                                                                               timeout=30)
  return answer.model_spec.version.value


@pytest.mark.slow
def test_32_clients_for_60_s_with_a_push_lose_nothing(finished_run, tmp_path):
  _, output_dir, _, _ = finished_run
  serving_dir = str(tmp_path / 'serving')
  shutil.copytree(os.path.join(output_dir, 'serving'), serving_dir)
  config = model_config.write(serving_dir, MODELS)
  server = Server([sys.executable, '-m', 'serving.server', '--model_config_file', config,
                   '--port', '0', '--rest_api_port', '0', '--file_system_poll_wait_seconds',
                   '0.5', '--max_request_bytes', str(MAX_BODY), '--workers', str(WORKERS)])
  failures, answered, stop = [], [0] * THREADS, threading.Event()

  def client_thread(i):
    grpc_client = i % 2 == 1
    with Client(MODEL, port=server.grpc_port if grpc_client else server.rest_port,
                use_grpc=grpc_client) as client:
      while not stop.is_set():
        try:
          if len(client.recommend(USER, k=5)) != 5:
            failures.append('short answer')
          answered[i] += 1
        except ServingError as e:
          failures.append(str(e))

  try:
    old = _served_version(server.grpc_port)
    threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(THREADS)]
    started = time.monotonic()
    for thread in threads:
      thread.start()
    time.sleep(10)
    steady_start = _rss_bytes(server.worker_pids())
    time.sleep(SECONDS / 2 - 10)
    before_push = _rss_bytes(server.worker_pids())
    new = _push(serving_dir, tmp_path)
    time.sleep(max(0.0, started + SECONDS - time.monotonic()))
    after_push = _rss_bytes(server.worker_pids())
    stop.set()
    for thread in threads:
      thread.join()
    assert not failures, (len(failures), failures[:3])
    assert min(answered) > 0 and sum(answered) > THREADS * 10, answered
    assert before_push <= steady_start * STEADY_GROWTH, (steady_start, before_push)
    assert after_push <= before_push * AFTER_PUSH, (before_push, after_push)
    assert new > old and _served_version(server.grpc_port) == new
    assert server.alive()
  finally:
    stop.set()
    log = server.stop()
  assert 'Traceback' not in log, log
  print(f'{sum(answered)} requests in {SECONDS} s by {THREADS} threads, none failed; worker '
        f'RSS {steady_start / 2**20:.0f} -> {before_push / 2**20:.0f} MiB under load, '
        f'{after_push / 2**20:.0f} MiB after the push')
