"""TF Serving's REST API (the subset clients use) on Tornado.

    GET  /v1/models/NAME[/versions/N]                          model status
    GET  /v1/models/NAME[/versions/N|/labels/L]/metadata       signatures
    POST /v1/models/NAME[/versions/N|/labels/L]:predict        {"instances": ...} or {"inputs": ...}
    POST /v1/models/NAME[/versions/N|/labels/L]:regress        {"examples": [...], "context": {...}}

Errors are `{"error": "message"}` with TF Serving's HTTP codes. Bodies larger than
`max_body_bytes` are refused with 413 (their bytes are dropped as they arrive, never kept).
`:predict` runs on the event loop, its TensorFlow calls merged by serving/batching.py;
metadata, status and `:regress` run in a small thread pool.
"""

import concurrent.futures
import json
import logging

import tornado.ioloop
import tornado.web
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import regression_pb2

from serving import api
from serving import tensor_json
from serving.model_store import ModelStore
from serving.status import ServingError, invalid, not_found

_log = logging.getLogger('serving')
_PATH = (r'/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?'
         r'(?P<suffix>/metadata|:predict|:regress|:classify)?/?')


def _proto_json(message) -> dict:
  return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                   including_default_value_fields=True)


@tornado.web.stream_request_body
class ModelHandler(tornado.web.RequestHandler):
  """Every /v1/models/... request."""

  def initialize(self, store: ModelStore, executor: concurrent.futures.Executor,
                 max_body_bytes: int):
    self.store, self.executor, self.max_body_bytes = store, executor, max_body_bytes
    self._chunks, self._size, self._too_large = [], 0, False

  def prepare(self):
    length = self.request.headers.get('Content-Length')
    if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
      self._too_large = True

  def data_received(self, chunk: bytes):
    self._size += len(chunk)
    if self._size > self.max_body_bytes:
      self._too_large = True
    if not self._too_large:
      self._chunks.append(chunk)

  def _send(self, status: int, body: dict):
    self.set_status(status)
    self.set_header('Content-Type', 'application/json')
    self.finish(json.dumps(body))

  def _send_error(self, error: ServingError):
    self._send(error.http_status, {'error': error.message})

  async def _answer(self, body):
    """Sends the JSON that awaiting `body` gives, or the error it raises."""
    try:
      answer = await body
    except ServingError as e:
      self._send_error(e)
    except Exception as e:  # a bug must not take the server down; the client gets a 500
      _log.exception('request %s %s failed', self.request.method, self.request.path)
      self._send(500, {'error': f'internal error: {type(e).__name__}: {e}'})
    else:
      self._send(200, answer)

  def _in_pool(self, work):
    return tornado.ioloop.IOLoop.current().run_in_executor(self.executor, work)

  async def get(self, name, version, label, suffix):
    if suffix == '/metadata':
      request = get_model_metadata_pb2.GetModelMetadataRequest(
          model_spec=api.spec_from_path(name, version, label), metadata_field=['signature_def'])
      await self._answer(self._in_pool(lambda: _proto_json(api.metadata(self.store, request))))
    elif suffix is None and label is None:
      await self._answer(self._in_pool(lambda: _proto_json(api.status(
          self.store, name, int(version) if version is not None else None))))
    else:
      self._send_error(invalid(f'GET is not supported on {self.request.path}; '
                               'use POST for :predict and :regress'))

  async def post(self, name, version, label, suffix):
    if self._too_large:
      self._send(413, {'error': f'the request body is larger than {self.max_body_bytes} bytes '
                                '(--max_request_bytes)'})
      return
    if suffix not in (':predict', ':regress', ':classify'):
      self._send_error(not_found(f'unknown method on {self.request.path}: POST to '
                                 '/v1/models/NAME[/versions/N]:predict or :regress'))
      return
    raw = b''.join(self._chunks)
    if suffix == ':predict':
      await self._answer(self._predict(name, version, label, raw))
    else:
      await self._answer(self._in_pool(lambda: self._regress(name, version, label, suffix, raw)))

  async def _predict(self, name, version, label, raw: bytes) -> dict:
    """:predict runs on the event loop: decoding, the (batched) TensorFlow call and encoding;
    no thread hops and no pool of request threads contending for the GIL."""
    body, spec = self._body(name, version, label, raw)
    servable = api.resolve(self.store, spec)
    inputs, rows = tensor_json.request_inputs(
        body, servable.input_dtypes(spec.signature_name or 'serving_default'))
    outputs = await api.call(self.store, servable, spec.signature_name, inputs)
    return tensor_json.response(outputs, rows)

  @staticmethod
  def _body(name, version, label, raw: bytes):
    try:
      body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise invalid(f'the request body is not valid JSON: {e}') from None
    if not isinstance(body, dict):
      raise invalid('the request body must be a JSON object')
    signature_name = body.get('signature_name', '')
    if not isinstance(signature_name, str):
      raise invalid('"signature_name" must be a string')
    return body, api.spec_from_path(name, version, label, signature_name)

  def _regress(self, name, version, label, suffix, raw: bytes) -> dict:
    body, spec = self._body(name, version, label, raw)
    if suffix == ':classify':
      raise invalid('these models have no classification signature; use :predict or :regress')
    request = regression_pb2.RegressionRequest(model_spec=spec)
    request.input.example_list.examples.extend(tensor_json.examples(body))
    return {'result': [r.value for r in api.regress(self.store, request).result.regressions]}


class NotFoundHandler(tornado.web.RequestHandler):
  def prepare(self):
    self.set_status(404)
    self.set_header('Content-Type', 'application/json')
    self.finish(json.dumps({'error': f'unknown path {self.request.path}: the API is under '
                                     '/v1/models/NAME'}))


def application(store: ModelStore, executor: concurrent.futures.Executor,
                max_body_bytes: int) -> tornado.web.Application:
  return tornado.web.Application(
      [(_PATH, ModelHandler, dict(store=store, executor=executor, max_body_bytes=max_body_bytes))],
      default_handler_class=NotFoundHandler)
