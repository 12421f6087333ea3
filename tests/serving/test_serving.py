"""Serving end to end: the pushed models behind serving/server.py (or a real
`tensorflow_model_server` when one is on PATH), driven over REST and gRPC by serving/client.py.

Every answer is compared with the same signature called in-process on the SavedModel, the way
TF Serving loads it.
"""

import ast
import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

from components.export import warmup
from serving import check
from serving import server as server_main
from serving.client import Client, ServingError, fill_inputs
from tests.conftest import MODELS, PROJECT_DIR, ml100k_rating

MAX_BODY = 256 * 1024
WORKERS = 2  # server processes behind the ports (serving/workers.py), whatever the core count
USER = '196'  # has training ratings in the 3,000-rating sample


class Server:
  """A server process on free ports; `stop()` ends it and returns its log."""

  def __init__(self, command, cwd=PROJECT_DIR):
    self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
    self.lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
      line = self.process.stdout.readline()
      if not line:
        break
      self.lines.append(line)
      ports = server_main.ready_ports(line)
      if ports:
        self.rest_port, self.grpc_port = ports
        threading.Thread(target=self._drain, daemon=True).start()
        return
    self.process.kill()
    raise AssertionError('the server did not start:\n' + ''.join(self.lines))

  def _drain(self):
    for line in self.process.stdout:
      self.lines.append(line)

  def alive(self):
    return self.process.poll() is None

  def workers_saying(self, text):
    """The worker processes (pids) that logged a line containing `text`."""
    return {int(m.group(1)) for line in list(self.lines)
            for m in [re.search(r'\[worker (\d+)\] (.*)', line)] if m and text in m.group(2)}

  def worker_pids(self):
    with open(f'/proc/{self.process.pid}/task/{self.process.pid}/children', encoding='utf-8') as f:
      return [int(pid) for pid in f.read().split()]

  def stop(self):
    self.process.send_signal(signal.SIGTERM)
    self.process.wait(timeout=30)
    return ''.join(self.lines)


@pytest.fixture(scope='module')
def served(finished_run, tmp_path_factory):
  """A copy of the run's serving folder (tests push new versions into it) and a server on it."""
  _, output_dir, _, _ = finished_run
  serving_dir = str(tmp_path_factory.mktemp('serving') / 'serving')
  shutil.copytree(os.path.join(output_dir, 'serving'), serving_dir)
  from serving import model_config
  config = model_config.write(serving_dir, MODELS)
  server = Server([sys.executable, '-m', 'serving.server', '--model_config_file', config,
                   '--port', '0', '--rest_api_port', '0', '--file_system_poll_wait_seconds',
                   '0.5', '--max_request_bytes', str(MAX_BODY), '--workers', str(WORKERS)])
  yield serving_dir, server
  log = server.stop()
  assert 'Traceback' not in log, log


def _loaded(serving_dir, name):
  base = os.path.join(serving_dir, name)
  return tf.saved_model.load(os.path.join(base, max(os.listdir(base), key=int)))


def _clients(server, name):
  return [Client(name, port=server.rest_port), Client(name, port=server.grpc_port, use_grpc=True)]


@pytest.mark.parametrize('name', MODELS)
def test_client_answers_every_signature_like_the_saved_model(served, name):
  serving_dir, server = served
  loaded = _loaded(serving_dir, name)
  inputs = {
      'recommend': {'user_id': [USER], 'k': [10], 'exclude_movie_ids': [['']]},
      'predict_rating': {'user_id': [USER, USER, 'no-such-user'],
                         'movie_id': ['242', '50', '50']},
      'similar_movies': {'movie_id': ['50'], 'k': [5]},
      'recommend_new_user': {'k': [10], 'exclude_movie_ids': [['']],
                             'rated_movie_ids': [['50', '172']], 'rated_ratings': [[5.0, 4.0]]},
      'predict_rating_new_user': {'movie_id': ['181', '1'],
                                  'rated_movie_ids': [['50', '172'], ['50', '']],
                                  'rated_ratings': [[5.0, 4.0], [2.0, 0.0]]},
  }
  for client in _clients(server, name):
    with client:
      for signature, request in inputs.items():
        answer = client.predict(signature, request)
        sent = client.request_inputs(signature, request)
        expected = loaded.signatures[signature](**{k: tf.constant(v) for k, v in sent.items()})
        assert set(answer) == set(expected)
        for key, value in expected.items():
          value = value.numpy()
          if value.dtype == object:
            assert answer[key].tolist() == [[x.decode() for x in row] for row in value.tolist()]
          else:
            np.testing.assert_allclose(answer[key], value, rtol=1e-5, atol=1e-6)
      top = client.recommend(USER, k=10)
      assert len(top) == 10 and all(movie.title for movie in top)
      sent = client.request_inputs('recommend', {'user_id': [USER], 'k': [10]})
      assert [m.movie_id for m in top] == [m.decode() for m in loaded.signatures['recommend'](
          **{k: tf.constant(v) for k, v in sent.items()})['movie_ids'].numpy()[0]]
      ratings = client.predict_rating([(USER, '242'), (USER, '50')])
      assert len(ratings) == 2 and all(1.0 <= r <= 5.0 for r in ratings)
      similar = client.similar_movies('50', k=5)
      assert len(similar) == 5 and '50' not in [m.movie_id for m in similar]


def test_row_and_column_formats_agree(served):
  _, server = served
  with Client('content_based', port=server.rest_port) as client:
    request = {'user_id': [USER, '1'], 'movie_id': ['242', '50']}
    columns = client.predict('predict_rating', request)
    rows = client.predict('predict_rating', request, row_format=True)
  np.testing.assert_allclose(columns['rating'], rows['rating'], rtol=1e-6)


def test_serving_default_takes_b64_examples_and_regress_takes_features(served):
  serving_dir, server = served
  for name in MODELS:
    expected = _loaded(serving_dir, name).signatures['serving_default'](
        examples=tf.constant([ml100k_rating().SerializeToString()]))['rating'].numpy()
    url = f'http://127.0.0.1:{server.rest_port}/v1/models/{name}'
    b64 = base64.b64encode(ml100k_rating().SerializeToString()).decode()
    rows = requests.post(url + ':predict', json={'instances': [{'b64': b64}]}).json()
    np.testing.assert_allclose(rows['predictions'], expected, rtol=1e-5)
    features = {k: (list(v.bytes_list.value)[0].decode() if v.bytes_list.value
                    else v.int64_list.value[0]) for k, v in ml100k_rating().features.feature.items()}
    user = {k: features.pop(k) for k in ('user_id', 'age', 'gender', 'occupation', 'zip_code')}
    regressed = requests.post(url + ':regress', json={
        'signature_name': 'regress', 'context': user, 'examples': [features]}).json()
    np.testing.assert_allclose(regressed['result'], expected, rtol=1e-5)
    # gRPC Regress on the same example.
    with grpc.insecure_channel(f'127.0.0.1:{server.grpc_port}') as channel:
      request = regression_pb2.RegressionRequest()
      request.model_spec.name, request.model_spec.signature_name = name, 'regress'
      request.input.example_list.examples.append(ml100k_rating())
      answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Regress(request)
    np.testing.assert_allclose([r.value for r in answer.result.regressions], expected, rtol=1e-5)


def test_metadata_and_status_over_rest_and_grpc(served):
  serving_dir, server = served
  for client in _clients(server, 'collaborative_filtering'):
    with client:
      assert set(client.signatures()) >= {'serving_default', 'regress', 'predict_rating',
                                          'recommend', 'similar_movies'}
      assert client.signatures()['recommend'] == {'user_id': 'DT_STRING', 'k': 'DT_INT32',
                                                  'exclude_movie_ids': 'DT_STRING'}
      version = int(os.listdir(os.path.join(serving_dir, 'collaborative_filtering'))[0])
      assert client.status() == [{'version': version, 'state': 'AVAILABLE', 'error': ''}]
  for use_grpc, port in ((False, server.rest_port), (True, server.grpc_port)):
    with Client('collaborative_filtering', port=port, use_grpc=use_grpc,
                version=version) as pinned:  # /versions/N over REST, model_spec.version in gRPC
      assert len(pinned.recommend(USER, k=3)) == 3
  metadata = requests.get(f'http://127.0.0.1:{server.rest_port}/v1/models/content_based/metadata'
                          ).json()
  assert metadata['model_spec']['name'] == 'content_based'
  assert metadata['metadata']['signature_def']['signature_def']['regress']['method_name'] == \
      'tensorflow/serving/regress'


# (path, body, HTTP status, words of the message)
BAD_REST = [
    # Columns of different lengths: refused by the signature itself (as under TF Serving),
    # not broadcast into two ratings.
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "predict_rating", "inputs": {"user_id": ["196", "186"], '
     b'"movie_id": ["50"]}}', 400, 'the inputs movie_id, user_id have'),
    ('/v1/models/content_based:predict', b'{"inputs": ', 400, 'not valid JSON'),
    ('/v1/models/content_based:predict', b'[1, 2]', 400, 'JSON object'),
    ('/v1/models/no_such_model:predict', b'{"inputs": {}}', 404, 'Servable not found'),
    ('/v1/models/content_based/versions/7:predict', b'{"inputs": {}}', 404, 'Specific('),
    ('/v1/models/content_based:predict', b'{"signature_name": "nope", "inputs": {}}', 400,
     'not found in signature def'),
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "similar_movies", "inputs": {"movie": ["50"], "k": [3]}}', 400,
     "unknown: ['movie']"),
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "similar_movies", "inputs": {"movie_id": ["50"], "k": ["3"]}}', 400,
     'expected type DT_INT32'),
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "similar_movies", "inputs": {"movie_id": ["50"], "k": [0]}}', 400,
     'k must be at least 1'),
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "similar_movies", "inputs": {"movie_id": ["50"], "k": [100000]}}', 400,
     'k must be at most'),
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "similar_movies", "inputs": {"movie_id": ["no-such"], "k": [3]}}', 400,
     'unknown movie_id'),
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "similar_movies", "inputs": {"movie_id": "50", "k": [3]}}', 400,
     'has shape []'),
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "similar_movies", "instances": [{"movie_id": "50"}, {"k": 3}]}', 400,
     'every row must name the same inputs'),
    ('/v1/models/collaborative_filtering:predict',
     b'{"signature_name": "recommend", "inputs": {"user_id": ["no-such-user"], "k": [3], '
     b'"exclude_movie_ids": [[""]]}}', 400,
     'unknown user_id (no ratings in training): for a new user, send an empty user_id'),
    ('/v1/models/collaborative_filtering:regress', b'{"examples": [{"user_id": "1"}]}', 400,
     'Expected regression signature'),
    ('/v1/models/collaborative_filtering:predict', b'{"instances": [{"b64": "!!"}]}', 400,
     'not valid base64'),
    ('/v2/anything', b'{}', 404, 'unknown path'),
]


def test_bad_rest_requests_get_clear_4xx_and_the_server_keeps_serving(served):
  _, server = served
  base = f'http://127.0.0.1:{server.rest_port}'
  for path, body, status, words in BAD_REST:
    answer = requests.post(base + path, data=body, timeout=30)
    assert answer.status_code == status, (path, body, answer.text)
    assert words in answer.json()['error'], (path, body, answer.text)
  big = b'{"inputs": "' + b'x' * (MAX_BODY + 1) + b'"}'
  answer = requests.post(base + '/v1/models/content_based:predict', data=big, timeout=30)
  assert answer.status_code == 413 and 'larger than' in answer.json()['error']
  assert server.alive()
  with Client('collaborative_filtering', port=server.rest_port) as client:
    assert len(client.recommend(USER, k=3)) == 3


def test_bad_grpc_requests_get_tf_serving_status_codes(served):
  _, server = served
  with grpc.insecure_channel(f'127.0.0.1:{server.grpc_port}',
                             options=[('grpc.max_send_message_length', 8 * MAX_BODY)]) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def predict(model='collaborative_filtering', signature='similar_movies', version=None,
                **inputs):
      request = predict_pb2.PredictRequest()
      request.model_spec.name, request.model_spec.signature_name = model, signature
      if version is not None:
        request.model_spec.version.value = version
      for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
      return stub.Predict(request, timeout=30)

    cases = [
        (dict(model='no_such_model'), grpc.StatusCode.NOT_FOUND),
        (dict(version=7), grpc.StatusCode.NOT_FOUND),
        (dict(signature='nope'), grpc.StatusCode.FAILED_PRECONDITION),
        (dict(movie_id=np.array([b'50'], dtype=object), k=np.array([3], np.int64)),
         grpc.StatusCode.INVALID_ARGUMENT),
        (dict(movie_id=np.array([b'50'], dtype=object), k=np.array([0], np.int32)),
         grpc.StatusCode.INVALID_ARGUMENT),
        (dict(signature='recommend', user_id=np.array([b'no-such-user'], dtype=object),
              k=np.array([3], np.int32)), grpc.StatusCode.INVALID_ARGUMENT),
        (dict(movie_id=np.array([b'x' * (2 * MAX_BODY)], dtype=object),
              k=np.array([1], np.int32)), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ]
    for kwargs, code in cases:
      with pytest.raises(grpc.RpcError) as error:
        predict(**kwargs)
      assert error.value.code() == code, (kwargs, error.value.details())
    ok = predict(movie_id=np.array([b'50'], dtype=object), k=np.array([3], np.int32))
    assert len(tf.make_ndarray(ok.outputs['movie_ids'])[0]) == 3
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(
            model_spec={'name': 'content_based'}), timeout=30)
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


# Model names and versions that would point outside the model folder, if a server mapped
# them to paths: ours resolves names only through models.config, versions only as numbers.
ESCAPING_NAMES = ['..', '.', '..%2F..%2Fetc', '%2e%2e', 'collaborative_filtering%2F..',
                  'collaborative_filtering%2F..%2Fcontent_based']


def _listening_addresses(port):
  """Local addresses (hex, as in /proc/net/tcp[6]) of the sockets listening on `port`."""
  found = set()
  for table in ('/proc/net/tcp', '/proc/net/tcp6'):
    with open(table, encoding='utf-8') as f:
      for line in f.readlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(':')
        if int(local_port, 16) == port and state == '0A':  # LISTEN
          found.add(address)
  return found


def test_requests_cannot_escape_the_model_folder_or_the_bounds(served):
  _, server = served
  base = f'http://127.0.0.1:{server.rest_port}'
  for name in ESCAPING_NAMES:
    for path in (f'/v1/models/{name}:predict', f'/v1/models/{name}/versions/1:predict',
                 f'/v1/models/collaborative_filtering/versions/{name}:predict'):
      answer = requests.post(base + path, data=b'{"instances": []}', timeout=30)
      assert answer.status_code == 404, (path, answer.text)
    assert requests.get(f'{base}/v1/models/{name}/metadata', timeout=30).status_code == 404
  with grpc.insecure_channel(f'127.0.0.1:{server.grpc_port}') as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for name in ('../collaborative_filtering', 'collaborative_filtering/../content_based',
                 '/etc/passwd'):
      request = predict_pb2.PredictRequest()
      request.model_spec.name, request.model_spec.signature_name = name, 'similar_movies'
      with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=30)
      assert error.value.code() == grpc.StatusCode.NOT_FOUND, name
  with Client('collaborative_filtering', port=server.rest_port) as client:  # k is bounded
    with pytest.raises(ServingError) as error:
      client.recommend(USER, k=2**31 - 1)
    assert error.value.status == 400 and 'k must be at most' in error.value.message
  # Loopback only, unless --host says otherwise: 127.0.0.1 as /proc/net/tcp writes it, or as
  # the IPv4-mapped IPv6 address gRPC listens on (::ffff:127.0.0.1 in /proc/net/tcp6).
  loopback = {'0100007F', '0000000000000000FFFF00000100007F'}
  for port in (server.rest_port, server.grpc_port):
    assert _listening_addresses(port) and _listening_addresses(port) <= loopback, port
  assert server.alive()


def test_serving_never_unpickles_or_evaluates_request_data():
  """No code path of the server can run what a request carries: no eval/exec, no pickle-like
  deserialisers (requests are JSON and protobuf, parsed into tensors)."""
  forbidden_calls = {'eval', 'exec', 'compile', '__import__'}
  forbidden_modules = {'pickle', 'cPickle', 'dill', 'cloudpickle', 'marshal', 'shelve'}
  folder = os.path.join(PROJECT_DIR, 'serving')
  for name in sorted(os.listdir(folder)):
    if not name.endswith('.py'):
      continue
    with open(os.path.join(folder, name), encoding='utf-8') as f:
      tree = ast.parse(f.read(), name)
    for node in ast.walk(tree):
      if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        assert node.func.id not in forbidden_calls, (name, node.lineno)
      if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        assert node.func.attr not in ('load', 'loads') or not (
            isinstance(node.func.value, ast.Name)
            and node.func.value.id in forbidden_modules | {'yaml'}), (name, node.lineno)
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = ({a.name.split('.')[0] for a in node.names} if isinstance(node, ast.Import)
                   else {(node.module or '').split('.')[0]})
        assert not modules & forbidden_modules, (name, node.lineno)


def test_client_errors_name_the_problem(served):
  _, server = served
  for client in _clients(server, 'collaborative_filtering'):
    with client:
      with pytest.raises(ServingError) as error:
        client.similar_movies('no-such-movie', k=3)
      assert 'unknown movie_id' in error.value.message
      # Demographics are content_based's input: sent to collaborative_filtering, they are
      # refused, not dropped (the list would not be the one the caller asked for).
      with pytest.raises(ServingError) as error:
        client.recommend('', k=3, age=30, gender='F')
      assert error.value.status == 'INVALID_ARGUMENT'
      assert "'recommend_new_user' takes no age, gender; it takes" in error.value.message
      # A new user's ratings go to recommend_new_user, which folds them in.
      folded = client.recommend('', k=5, rated={'50': 5.0, '181': 5.0})
      assert len(folded) == 5 and not {'50', '181'} & {m.movie_id for m in folded}
      assert folded != client.recommend('', k=5)
      # And rated from them (predict_rating_new_user): high ratings sent, a higher rating.
      fans, critics = (client.predict_rating([('', '172')], rated={'50': r, '181': r})[0]
                       for r in (5.0, 1.0))
      assert fans > critics + 0.5, (fans, critics)
  for client in _clients(server, 'content_based'):
    with client:
      with pytest.raises(ServingError) as error:
        client.recommend('no-such-user', k=3)
      assert error.value.status in (400, 'INVALID_ARGUMENT')
      assert 'or describe the user (demographics, rated_movie_ids)' in error.value.message
      assert len(client.recommend('', k=3)) == 3  # a new user's list
      assert len(client.recommend('no-such-user', k=3, age=30, gender='F')) == 3
  with Client('collaborative_filtering', port=1), pytest.raises(ServingError) as error:
    Client('collaborative_filtering', port=1).recommend(USER)
  assert error.value.status == 'UNAVAILABLE'


def test_new_users_of_different_lengths_in_one_request_get_their_own_answers(served):
  """The client pads ragged rated rows (as users' ratings are) with the signatures' padding, so
  a batch of new users gets what each would get alone."""
  _, server = served
  users = [{'50': 5.0}, {'50': 5.0, '172': 4.0, '1': 2.0}, {}]
  for name in MODELS:
    for client in _clients(server, name):
      with client:
        batch = client.predict('recommend_new_user', {
            'k': [5] * 3, 'exclude_movie_ids': [[], ['181'], []],
            'rated_movie_ids': [list(u) for u in users],
            'rated_ratings': [list(u.values()) for u in users]})
        for row, (user, exclude) in enumerate(zip(users, [[], ['181'], []])):
          alone = client.predict('recommend_new_user', {
              'k': [5], 'exclude_movie_ids': [exclude], 'rated_movie_ids': [list(user)],
              'rated_ratings': [list(user.values())]})
          assert list(batch['movie_ids'][row]) == list(alone['movie_ids'][0]), (name, row)
        ratings = client.predict_rating([('', '181')] * 2, rated={'50': 5.0})
        assert ratings[0] == pytest.approx(ratings[1])


def test_the_client_refuses_rated_rows_it_cannot_pad():
  wanted = {'rated_movie_ids': 'DT_STRING', 'rated_ratings': 'DT_FLOAT', 'k': 'DT_INT32'}
  with pytest.raises(ServingError, match='row 1: 2 rated_movie_ids but 1 rated_ratings'):
    fill_inputs(wanted, {'k': [5, 5], 'rated_movie_ids': [['50'], ['50', '1']],
                         'rated_ratings': [[5.0], [4.0]]})
  with pytest.raises(ServingError, match="rated_movie_ids: row 0 is '50'; each row is a list"):
    fill_inputs(wanted, {'k': [5], 'rated_movie_ids': ['50'], 'rated_ratings': [[5.0]]})
  padded = fill_inputs(wanted, {'k': [5, 5], 'rated_movie_ids': [['50', '1'], []],
                                'rated_ratings': [[5.0, 4.0], []]})
  assert padded['rated_movie_ids'].tolist() == [['50', '1'], ['', '']]
  assert padded['rated_ratings'].tolist() == [[5.0, 4.0], [0.0, 0.0]]


def test_cli_prints_ten_titles_over_rest_and_grpc(served):
  _, server = served
  for flags in (['--port', str(server.rest_port)], ['--grpc', '--port', str(server.grpc_port)]):
    result = subprocess.run([sys.executable, '-m', 'serving.client', 'recommend', '--user', USER,
                             '-k', '10', *flags], cwd=PROJECT_DIR, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip().splitlines()
    assert len(lines) == 10 and lines[0].startswith('  1. ') and '(movie ' in lines[0]
    assert lines[9].startswith(' 10. ')
    if '--grpc' not in flags:  # REST loads no TensorFlow, so nothing of it reaches stderr
      assert result.stderr == ''


def test_the_rest_client_imports_no_tensorflow_or_grpc(served):
  _, server = served
  code = ('import sys; from serving.client import Client; '
          f'Client("collaborative_filtering", port={server.rest_port}).recommend({USER!r}, k=3); '
          'print(sorted(m for m in ("tensorflow", "grpc", "tensorflow_serving") '
          'if m in sys.modules))')
  result = subprocess.run([sys.executable, '-c', code], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == '[]' and result.stderr == ''


def test_cli_answers_a_new_user_from_the_ratings_sent(served):
  _, server = served
  run = lambda *args: subprocess.run(
      [sys.executable, '-m', 'serving.client', *args, '--port', str(server.rest_port)],
      cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
  for model in ('content_based', 'collaborative_filtering'):
    alone = run('recommend', '--model', model, '--user', '', '-k', '5')
    assert alone.returncode == 0, alone.stderr
    result = run('recommend', '--model', model, '--user', '', '-k', '5',
                 '--rated', '50=5', '--rated', '181=5')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip().splitlines()
    assert len(lines) == 5 and not any('(movie 50,' in line or '(movie 181,' in line
                                    for line in lines)
    assert result.stdout != alone.stdout  # the ratings sent are read
    rated = [run('predict', '--model', model, '--user', '', '--movie', '172',
                 '--rated', f'50={r}', '--rated', f'181={r}') for r in (5, 1)]
    assert all(r.returncode == 0 for r in rated), [r.stderr for r in rated]
    assert all(r.stdout.startswith('new user, movie 172: ') for r in rated), rated[0].stdout
    fans, critics = (float(r.stdout.rsplit(':', 1)[1]) for r in rated)
    assert fans > critics, (model, fans, critics)
  bad = run('recommend', '--model', 'content_based', '--user', '', '--rated', '50')
  assert bad.returncode == 2 and 'expected MOVIE=RATING' in bad.stderr


def test_a_new_version_is_picked_up_without_failing_requests(served):
  serving_dir, server = served
  base = os.path.join(serving_dir, 'collaborative_filtering')
  old = max(int(v) for v in os.listdir(base))
  failures, answered = [], []
  stop = threading.Event()

  def load():
    with Client('collaborative_filtering', port=server.grpc_port, use_grpc=True) as client:
      while not stop.is_set():
        try:
          answered.append(len(client.recommend(USER, k=5)))
        except ServingError as e:
          failures.append(str(e))

  threads = [threading.Thread(target=load) for _ in range(4)]
  for thread in threads:
    thread.start()
  # A push: copied elsewhere, then renamed into place (a partial folder is never visible).
  staging = os.path.join(serving_dir, '.staging')
  shutil.copytree(os.path.join(base, str(old)), staging)
  os.rename(staging, os.path.join(base, str(old + 1)))
  deadline = time.monotonic() + 120
  unloaded = f'collaborative_filtering version {old} unloaded'
  while time.monotonic() < deadline and len(server.workers_saying(unloaded)) < WORKERS:
    time.sleep(0.2)
  time.sleep(1.0)
  with Client('collaborative_filtering', port=server.rest_port) as client:
    status = {s['version']: s['state'] for s in client.status()}
  stop.set()
  for thread in threads:
    thread.join()
  assert status == {old: 'END', old + 1: 'AVAILABLE'}, status
  assert not failures, failures[:3]
  assert len(answered) > 10 and set(answered) == {5}
  with grpc.insecure_channel(f'127.0.0.1:{server.grpc_port}') as channel:
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = 'collaborative_filtering', \
        'similar_movies'
    request.inputs['movie_id'].CopyFrom(tf.make_tensor_proto(['50']))
    request.inputs['k'].CopyFrom(tf.make_tensor_proto([2], dtype=tf.int32))
    answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request)
  assert answer.model_spec.version.value == old + 1


def test_a_worker_that_dies_is_replaced_and_the_others_keep_serving(served):
  _, server = served
  victim = server.worker_pids()[0]
  assert len(server.worker_pids()) == WORKERS
  os.kill(victim, signal.SIGKILL)
  deadline = time.monotonic() + 120
  exited = f'worker {victim} exited with code -9; starting another'
  while time.monotonic() < deadline and not any(exited in line for line in server.lines):
    time.sleep(0.1)  # (connections queued on the dying worker's socket are reset with it)
  answered = 0  # while the replacement loads, new connections go to the worker left
  while time.monotonic() < deadline:
    with Client('collaborative_filtering', port=server.rest_port) as client:
      answered += len(client.recommend(USER, k=2)) == 2
    if any('is serving in its place' in line for line in server.lines):
      break
    time.sleep(0.2)
  assert any(exited in line for line in server.lines), ''.join(server.lines[-20:])
  assert any('is serving in its place' in line for line in server.lines)
  assert answered >= 1 and server.alive()
  pids = server.worker_pids()
  assert len(pids) == WORKERS and victim not in pids


def test_a_second_server_cannot_take_the_same_port(served):
  _, server = served
  result = subprocess.run([sys.executable, '-m', 'serving.server', '--model_config_file',
                           os.path.join(served[0], 'models.config'), '--port', '0',
                           '--rest_api_port', str(server.rest_port), '--workers', '2'],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2 and 'Address already in use' in result.stderr, result.stderr


def test_every_export_has_warmup_requests_for_each_signature(finished_run):
  _, _, _, summary = finished_run
  for model in summary['models']:
    logs = warmup.read(model['pushed_version_path'])
    names = {(log.predict_log.request.model_spec.signature_name
              or log.regress_log.request.model_spec.signature_name) for log in logs}
    assert names == {'serving_default', 'regress', 'predict_rating', 'recommend',
                     'recommend_new_user', 'predict_rating_new_user', 'similar_movies',
                     'transformed_features'}


def test_servability_check_passes_the_exports_and_catches_foreign_ops(finished_run, tmp_path):
  _, output_dir, _, summary = finished_run
  result = subprocess.run([sys.executable, '-m', 'serving.check',
                           os.path.join(output_dir, 'serving')], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout + result.stderr
  assert result.stdout.count('ok   ') == 2 and 'recommend (predict)' in result.stdout
  from tensorflow.core.protobuf import saved_model_pb2
  for foreign, words in (('Addons>GeluGrad', 'lacks'), ('SentencepieceOp', 'lacks'),
                         ('EagerPyFunc', 'Python runtime')):
    copy = str(tmp_path / foreign.replace('>', '_'))
    shutil.copytree(summary['models'][0]['pushed_version_path'], copy)
    path = os.path.join(copy, 'saved_model.pb')
    with open(path, 'rb') as f:
      saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    function = saved_model.meta_graphs[0].graph_def.library.function[0]
    function.node_def.add(name='foreign', op=foreign)
    with open(path, 'wb') as f:
      f.write(saved_model.SerializeToString())
    report = check.check(copy)
    assert any(words in p and foreign in p for p in report.problems), report.problems


def test_deployment_files_match_the_serving_layout():
  import yaml
  from serving import model_config
  with open(os.path.join(PROJECT_DIR, 'serving', 'docker-compose.yml'), encoding='utf-8') as f:
    compose = yaml.safe_load(f)['services']['tf-serving']
  with open(os.path.join(PROJECT_DIR, 'serving', 'k8s.yaml'), encoding='utf-8') as f:
    documents = {d['kind']: d for d in yaml.safe_load_all(f)}
  container = documents['Deployment']['spec']['template']['spec']['containers'][0]
  image = f'tensorflow/serving:{check.TF_SERVING_VERSION}'
  assert compose['image'] == image and container['image'] == image
  assert tf.__version__.rsplit('.', 1)[0] == check.TF_SERVING_VERSION.rsplit('.', 1)[0]
  config_flag = (f'--model_config_file={model_config.CONTAINER_MOUNT}/'
                 f'{model_config.CONTAINER_CONFIG_FILE}')
  for args in (compose['command'], container['args']):
    assert config_flag in args and '--port=8500' in args and '--rest_api_port=8501' in args
  assert any(v.endswith(f':{model_config.CONTAINER_MOUNT}:ro') for v in compose['volumes'])
  assert {p['port'] for p in documents['Service']['spec']['ports']} == {8500, 8501}
  batching = documents['ConfigMap']['data']['batching.config']
  with open(os.path.join(PROJECT_DIR, 'serving', 'batching.config'), encoding='utf-8') as f:
    shipped = [line for line in f if line.strip() and not line.startswith('#')]
  assert [line.strip() for line in shipped] == [line.strip() for line in batching.splitlines()]


def test_the_same_client_against_real_tensorflow_model_server(finished_run, tmp_path):
  binary = shutil.which('tensorflow_model_server')
  if binary is None:
    pytest.skip('tensorflow_model_server is not on PATH (it ships as the tensorflow/serving '
                'Docker image or from Google\'s apt repository; neither installs here)')
  _, output_dir, _, _ = finished_run
  rest, grpc_port = 18501, 18500
  process = subprocess.Popen([binary, f'--port={grpc_port}', f'--rest_api_port={rest}',
                              '--model_config_file=' + os.path.join(output_dir, 'serving',
                                                                     'models.config')])
  try:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
      try:
        if Client('collaborative_filtering', port=rest).status()[0]['state'] == 'AVAILABLE':
          break
      except ServingError:
        time.sleep(1)
    for client in (Client('collaborative_filtering', port=rest),
                   Client('collaborative_filtering', port=grpc_port, use_grpc=True)):
      assert len(client.recommend(USER, k=10)) == 10
      assert len(client.predict_rating([(USER, '50')])) == 1
  finally:
    process.terminate()
    process.wait(timeout=30)


def test_server_refuses_a_missing_config_clearly(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'serving.server', '--model_config_file',
                           str(tmp_path / 'nope.config')], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 2
  assert 'nope.config: no such model config file' in result.stderr
  assert 'Traceback' not in result.stderr
  bad = tmp_path / 'bad.config'
  bad.write_text('model_config_list { nonsense: 1 }')
  result = subprocess.run([sys.executable, '-m', 'serving.server', '--model_config_file',
                           str(bad)], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2 and 'not a ModelServerConfig' in result.stderr
