"""A client for the served recommenders, over TF Serving's REST or gRPC API (one interface).

    python -m serving.client recommend --user 42 -k 10 [--grpc] [--host H] [--port P] [--model M]
    python -m serving.client predict --user 42 --movie 50 --movie 172
    python -m serving.client similar --movie 50 -k 5
    python -m serving.client status | metadata

Works against real TF Serving and against serving/server.py alike. The signatures' inputs come
from the model's metadata, so user features a call does not give are sent as "not given" (the
model then uses what it stored for the user in training). Over REST it needs only NumPy and
requests: TensorFlow and gRPC are imported on the first gRPC client (a TensorFlow import alone
takes seconds).

    from serving.client import Client
    with Client('collaborative_filtering') as client:          # REST on 127.0.0.1:8501
      for movie in client.recommend('42', k=10): print(movie.title)
"""

import argparse
import base64
import dataclasses
import sys
import types
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import requests

REST_PORT, GRPC_PORT = 8501, 8500
DEFAULT_MODEL = 'collaborative_filtering'
# Inputs a call may leave out, as the signatures' "not given" values (components/export/signatures.py).
_NOT_GIVEN = {'age': -1, 'gender': '', 'occupation': '', 'zip_code': '',
              'exclude_movie_ids': [''], 'rated_movie_ids': [''], 'rated_ratings': [0.0]}
_DTYPES = {'DT_STRING': object, 'DT_INT32': np.int32, 'DT_INT64': np.int64,
           'DT_FLOAT': np.float32, 'DT_DOUBLE': np.float64, 'DT_BOOL': bool}


def _grpc_modules() -> types.SimpleNamespace:
  """gRPC, TF Serving's protos and TensorFlow's tensor conversions, for the gRPC transport."""
  from components import tf_env  # noqa: F401  (Keras 2 before TensorFlow loads)
  import grpc
  import tensorflow as tf
  from google.protobuf import json_format
  from tensorflow_serving.apis import get_model_metadata_pb2
  from tensorflow_serving.apis import get_model_status_pb2
  from tensorflow_serving.apis import model_service_pb2_grpc
  from tensorflow_serving.apis import predict_pb2
  from tensorflow_serving.apis import prediction_service_pb2_grpc
  return types.SimpleNamespace(
      grpc=grpc, tf=tf, json_format=json_format, metadata=get_model_metadata_pb2,
      status=get_model_status_pb2, model_service=model_service_pb2_grpc, predict=predict_pb2,
      prediction_service=prediction_service_pb2_grpc)


class ServingError(Exception):
  """The server refused or failed a call; `status` is the HTTP status or the gRPC code name."""

  def __init__(self, status, message: str):
    super().__init__(f'{status}: {message}')
    self.status, self.message = status, message


@dataclasses.dataclass
class Movie:
  movie_id: str
  title: str
  score: float


class Client:
  """One served model, over REST (default) or gRPC."""

  def __init__(self, model: str = DEFAULT_MODEL, host: str = '127.0.0.1',
               port: Optional[int] = None, use_grpc: bool = False,
               version: Optional[int] = None, timeout: float = 30.0):
    self.model, self.host, self.use_grpc = model, host, use_grpc
    self.port = port or (GRPC_PORT if use_grpc else REST_PORT)
    self.version, self.timeout = version, timeout
    self._signatures = None
    if use_grpc:
      self._apis = apis = _grpc_modules()
      self._channel = apis.grpc.insecure_channel(f'{host}:{self.port}')
      self._predictions = apis.prediction_service.PredictionServiceStub(self._channel)
      self._models = apis.model_service.ModelServiceStub(self._channel)
    else:
      self._session = requests.Session()
      path = f'/v1/models/{model}' + (f'/versions/{version}' if version is not None else '')
      self._url = f'http://{host}:{self.port}{path}'

  def close(self):
    (self._channel if self.use_grpc else self._session).close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # --- the recommender calls ------------------------------------------------------------------

  def recommend(self, user_id: str, k: int = 10, exclude_movie_ids: Sequence[str] = (),
                **user_features) -> List[Movie]:
    """The `k` best movies for a user, best first (titles included). A new user (user_id
    '') is answered from `rated={movie_id: rating}` (and, for content_based, demographics) by
    the model's `recommend_new_user` signature, where it has one."""
    inputs = {'k': [int(k)], 'exclude_movie_ids': [list(exclude_movie_ids) or ['']],
              **_user_rows(user_features)}
    if str(user_id) == '' and 'recommend_new_user' in self.signatures():
      return _movies(self.predict('recommend_new_user', inputs))[0]
    return _movies(self.predict('recommend', {'user_id': [str(user_id)], **inputs}))[0]

  def predict_rating(self, pairs: Iterable[Tuple[str, str]], **user_features) -> List[float]:
    """Predicted ratings of (user_id, movie_id) pairs, in order. Where every user_id is '' (a
    new user), the pairs are rated from `rated={movie_id: rating}` (and, for content_based,
    demographics) by the model's `predict_rating_new_user` signature, where it has one."""
    pairs = [(str(u), str(m)) for u, m in pairs]
    if not pairs:
      return []
    inputs = {'movie_id': [m for _, m in pairs], **_user_rows(user_features, len(pairs))}
    if all(u == '' for u, _ in pairs) and 'predict_rating_new_user' in self.signatures():
      return [float(r) for r in self.predict('predict_rating_new_user', inputs)['rating']]
    inputs['user_id'] = [u for u, _ in pairs]
    return [float(r) for r in self.predict('predict_rating', inputs)['rating']]

  def similar_movies(self, movie_id: str, k: int = 10) -> List[Movie]:
    """The `k` movies nearest to one movie in the model's embedding space."""
    return _movies(self.predict('similar_movies', {'movie_id': [str(movie_id)], 'k': [int(k)]}))[0]

  # --- TF Serving's API -----------------------------------------------------------------------

  def signatures(self) -> Dict[str, Dict[str, str]]:
    """signature name -> {input name: dtype name}, from the model's metadata (cached)."""
    if self._signatures is None:
      defs = self.metadata()['metadata']['signature_def']['signature_def']
      defs = {name: sig for name, sig in defs.items() if not name.startswith('__')}
      self._outputs = {name: sorted(sig.get('outputs', {})) for name, sig in defs.items()}
      self._signatures = {name: {key: info['dtype'] for key, info in sig.get('inputs', {}).items()}
                          for name, sig in defs.items()}
    return self._signatures

  def request_inputs(self, signature_name: str, inputs: Dict[str, list]) -> Dict[str, np.ndarray]:
    """Every input the signature takes, as arrays: those not in `inputs` are "not given". An
    input it does not take is an error, as in TF Serving, never dropped unseen (demographics
    sent to collaborative_filtering, which has no use for them)."""
    wanted = self.signatures().get(signature_name)
    if wanted is None:
      raise ServingError('INVALID_ARGUMENT', f'{self.model} has no signature {signature_name!r}; '
                         f'it has {sorted(self.signatures())}')
    _refuse_unknown(f'{self.model}\'s {signature_name!r}', wanted, inputs)
    return fill_inputs(wanted, inputs)

  def predict(self, signature_name: str, inputs: Dict[str, list],
              row_format: bool = False) -> Dict[str, np.ndarray]:
    """Calls a signature with column inputs (see `request_inputs`); outputs by name."""
    full = self.request_inputs(signature_name, inputs)
    if self.use_grpc:
      return self._grpc_predict(signature_name, full)
    return self._rest_predict(signature_name, full, row_format)

  def metadata(self) -> dict:
    if not self.use_grpc:
      return self._get('/metadata')
    apis = self._apis
    request = apis.metadata.GetModelMetadataRequest(metadata_field=['signature_def'])
    self._spec(request.model_spec)
    response = self._call(self._predictions.GetModelMetadata, request)
    signatures = apis.metadata.SignatureDefMap()
    response.metadata['signature_def'].Unpack(signatures)
    return {'model_spec': {'name': response.model_spec.name,
                           'version': str(response.model_spec.version.value)},
            'metadata': {'signature_def': apis.json_format.MessageToDict(
                signatures, preserving_proto_field_name=True)}}

  def status(self) -> List[dict]:
    """[{version, state, error}] of the model's versions."""
    if not self.use_grpc:
      return [{'version': int(s['version']), 'state': s['state'],
               'error': s['status'].get('error_message', '')}
              for s in self._get('')['model_version_status']]
    request = self._apis.status.GetModelStatusRequest()
    self._spec(request.model_spec, signature=False)
    response = self._call(self._models.GetModelStatus, request)
    return [{'version': s.version,
             'state': self._apis.status.ModelVersionStatus.State.Name(s.state),
             'error': s.status.error_message} for s in response.model_version_status]

  # --- transports -----------------------------------------------------------------------------

  def _rest_predict(self, signature_name, inputs, row_format):
    encoded = {name: _json_column(array) for name, array in inputs.items()}
    if row_format:
      rows = len(next(iter(encoded.values())))
      body = {'signature_name': signature_name,
              'instances': [{name: column[i] for name, column in encoded.items()}
                            for i in range(rows)]}
    else:
      body = {'signature_name': signature_name, 'inputs': encoded}
    answer = self._post(':predict', body)
    (only, *more) = self._outputs[signature_name]  # a lone output is sent without its name
    if row_format:
      rows = answer['predictions']
      if not more:
        return {only: np.array(rows)}
      return {name: np.array([row[name] for row in rows]) for name in rows[0]}
    outputs = answer['outputs']
    if not more:
      return {only: np.array(outputs)}
    return {name: np.array(value) for name, value in outputs.items()}

  def _grpc_predict(self, signature_name, inputs):
    tf = self._apis.tf
    request = self._apis.predict.PredictRequest()
    self._spec(request.model_spec)
    request.model_spec.signature_name = signature_name
    for name, array in inputs.items():
      request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    response = self._call(self._predictions.Predict, request)
    outputs = {}
    for name, proto in response.outputs.items():
      value = tf.make_ndarray(proto)
      outputs[name] = (np.vectorize(lambda b: b.decode('utf-8'), otypes=[object])(value)
                       if value.dtype == object and value.size else value)
    return outputs

  def _spec(self, spec, signature=True):
    spec.name = self.model
    if self.version is not None:
      spec.version.value = self.version

  def _call(self, method, request):
    try:
      return method(request, timeout=self.timeout)
    except self._apis.grpc.RpcError as e:
      raise ServingError(e.code().name, e.details()) from None

  def _get(self, suffix):
    return self._answer(lambda: self._session.get(self._url + suffix, timeout=self.timeout))

  def _post(self, suffix, body):
    return self._answer(lambda: self._session.post(self._url + suffix, json=body,
                                                   timeout=self.timeout))

  def _answer(self, send) -> dict:
    try:
      response = send()
    except requests.ConnectionError:
      raise ServingError('UNAVAILABLE', f'no server at {self._url} (is it running?)') from None
    try:
      body = response.json()
    except ValueError:
      body = {'error': response.text[:200]}
    if response.status_code != 200:
      raise ServingError(response.status_code, body.get('error', ''))
    return body


def fill_inputs(wanted: Dict[str, str], inputs: Dict[str, list]) -> Dict[str, np.ndarray]:
  """Arrays for every input in `wanted` (name -> dtype name, e.g. 'DT_STRING'); those missing
  from `inputs` get the signatures' "not given" value, one per row. The rows of a list input
  (`exclude_movie_ids`, `rated_movie_ids`, `rated_ratings`) may differ in length, as users'
  ratings do: they are padded with what the signatures read as padding ('', 0)."""
  rows = len(next(iter(inputs.values())))
  _check_rated_rows(inputs)
  full = {}
  for name, dtype in wanted.items():
    value = inputs[name] if name in inputs else [_NOT_GIVEN.get(name, '')] * rows
    if isinstance(_NOT_GIVEN.get(name), list):
      value = _padded_rows(name, value)
    full[name] = np.array(value, dtype=_DTYPES.get(dtype, object))
  return full


def loaded_inputs(function, inputs: Dict[str, list]) -> dict:
  """Tensors for a signature of a SavedModel loaded in process (`tf.saved_model.load`, as TF
  Serving loads it), from column inputs as `Client.predict` takes them and with the same
  filling and padding, so an in-process caller sends what a client would."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tensorflow.core.framework import types_pb2  # pylint: disable=import-outside-toplevel
  wanted = {key: types_pb2.DataType.Name(spec.dtype.as_datatype_enum)
            for key, spec in function.structured_input_signature[1].items()}
  _refuse_unknown('the signature', wanted, inputs)
  return {name: tf.constant(value) for name, value in fill_inputs(wanted, inputs).items()}


def call_loaded(function, inputs: Dict[str, list]) -> Dict[str, np.ndarray]:
  """Calls a loaded SavedModel's signature with `loaded_inputs`; its outputs as arrays."""
  return {name: value.numpy() for name, value in function(**loaded_inputs(function,
                                                                           inputs)).items()}


def _refuse_unknown(signature: str, wanted: Dict[str, str], inputs: Dict[str, list]) -> None:
  """An input the signature does not take is an error, as in TF Serving, never dropped unseen."""
  unknown = sorted(set(inputs) - set(wanted))
  if unknown:
    raise ServingError('INVALID_ARGUMENT', f'{signature} takes no {", ".join(unknown)}; it '
                       f'takes {", ".join(sorted(wanted))}')


def _padded_rows(name: str, rows) -> list:
  """A list input's rows, each padded to the longest (at least one entry)."""
  for number, row in enumerate(rows):
    if isinstance(row, (str, bytes)) or np.ndim(row) != 1:
      raise ServingError('INVALID_ARGUMENT', f'{name}: row {number} is {row!r}; each row is a '
                         f"list, e.g. [['50', '172']] for one row")
  rows = [list(row) for row in rows]
  width = max([len(row) for row in rows] + [1])
  return [row + _NOT_GIVEN[name] * (width - len(row)) for row in rows]


def _check_rated_rows(inputs: Dict[str, list]) -> None:
  """Each row sends as many `rated_ratings` as `rated_movie_ids` (padding would otherwise pair a
  movie with a rating of 0, off the scale, or a rating with no movie)."""
  ids, ratings = inputs.get('rated_movie_ids'), inputs.get('rated_ratings')
  if ids is None or ratings is None:
    return
  for number, (row_ids, row_ratings) in enumerate(zip(ids, ratings)):
    if np.size(row_ids) != np.size(row_ratings):
      raise ServingError('INVALID_ARGUMENT', f'row {number}: {np.size(row_ids)} '
                         f'rated_movie_ids but {np.size(row_ratings)} rated_ratings')


def _json_column(array: np.ndarray) -> list:
  if array.dtype != object:
    return array.tolist()
  def text(value):
    if isinstance(value, bytes):
      try:
        return value.decode('utf-8')
      except UnicodeDecodeError:
        return {'b64': base64.b64encode(value).decode('ascii')}
    return value
  return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()


def _user_rows(features: dict, rows: int = 1) -> dict:
  """Per-row user features from keyword arguments (age=30, gender='F', rated={'50': 5.0})."""
  result = {}
  for name, value in features.items():
    if name == 'rated':  # a new user's ratings: {movie_id: rating}
      result['rated_movie_ids'] = [list(value) or ['']] * rows
      result['rated_ratings'] = [[float(r) for r in value.values()] or [0.0]] * rows
    elif value is not None:
      result[name] = [value] * rows
  return result


def _movies(outputs) -> List[List[Movie]]:
  result = []
  for ids, titles, scores in zip(outputs['movie_ids'], outputs['titles'], outputs['scores']):
    result.append([Movie(_text(m), _text(t), float(s))
                   for m, t, s in zip(ids, titles, scores) if _text(m)])
  return result


def _text(value) -> str:
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m serving.client',
                                   description='Query the served recommenders.')
  parser.add_argument('command', choices=['recommend', 'predict', 'similar', 'status',
                                          'metadata'])
  parser.add_argument('--user', help="user id (recommend, predict); '' for a new user")
  parser.add_argument('--rated', action='append', default=[], metavar='MOVIE=RATING',
                      help="a rating of the user's, sent with the request (repeatable): a "
                           "new user (--user '') is recommended and rated from these; "
                           'content_based also reads them for a known user')
  parser.add_argument('--movie', action='append', default=[],
                      help='movie id (similar; predict: repeat for several)')
  parser.add_argument('-k', type=int, default=10, help='how many movies')
  parser.add_argument('--model', default=DEFAULT_MODEL)
  parser.add_argument('--version', type=int, help='a specific model version (default: latest)')
  parser.add_argument('--host', default='127.0.0.1')
  parser.add_argument('--port', type=int, help=f'default {REST_PORT} (REST) or {GRPC_PORT} (gRPC)')
  parser.add_argument('--grpc', action='store_true', help="use TF Serving's gRPC API")
  args = parser.parse_args(argv)
  if args.command in ('recommend', 'predict') and args.user is None:
    parser.error(f"{args.command} needs --user (--user '' for a new user)")
  rated = {}
  for given in args.rated:
    movie, _, rating = given.partition('=')
    try:
      rated[movie.strip()] = float(rating)
    except ValueError:
      parser.error(f'--rated {given!r}: expected MOVIE=RATING, e.g. --rated 50=5')
    if not movie.strip():
      parser.error(f'--rated {given!r}: expected MOVIE=RATING, e.g. --rated 50=5')
  if args.command in ('predict', 'similar') and not args.movie:
    parser.error(f'{args.command} needs --movie')
  try:
    with Client(args.model, args.host, args.port, args.grpc, args.version) as client:
      features = {'rated': rated} if rated else {}
      if args.command in ('recommend', 'similar'):
        movies = (client.recommend(args.user, args.k, **features) if args.command == 'recommend'
                  else client.similar_movies(args.movie[0], args.k))
        for rank, movie in enumerate(movies, 1):
          print(f'{rank:3d}. {movie.title}  (movie {movie.movie_id}, score {movie.score:.4f})')
      elif args.command == 'predict':
        ratings = client.predict_rating([(args.user, m) for m in args.movie], **features)
        for movie, rating in zip(args.movie, ratings):
          print(f"{f'user {args.user}' if args.user else 'new user'}, movie {movie}: "
                f'{rating:.3f}')
      elif args.command == 'status':
        for s in client.status():
          print(f"{args.model} version {s['version']}: {s['state']} {s['error']}".rstrip())
      else:
        for name, inputs in sorted(client.signatures().items()):
          print(f'{name}: ' + ', '.join(f'{k} {v}' for k, v in sorted(inputs.items())))
  except ServingError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
