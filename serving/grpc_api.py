"""TF Serving's gRPC API on grpcio: PredictionService (Predict, Regress, Classify,
GetModelMetadata) and ModelService (GetModelStatus), from tensorflow-serving-api.

Requests are decoded and encoded on grpcio's threads; their TensorFlow calls go to the event
loop that the REST API runs on, where the batcher merges them with the other concurrent calls
(measured: grpcio's asyncio server handled a third fewer requests per second here). Errors are the gRPC status codes TF
Serving uses (NOT_FOUND for an unknown model or version, INVALID_ARGUMENT for a bad input, ...);
requests above the size bound get RESOURCE_EXHAUSTED from grpcio itself.
"""

import asyncio
import concurrent.futures
import functools
import logging

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import api
from serving.model_store import ModelStore
from serving.status import ServingError, invalid

_log = logging.getLogger('serving')


def _errors_as_status(method):
  """Turns a ServingError (or a bug) into the call's gRPC status instead of a crash."""
  @functools.wraps(method)
  def wrapper(self, request, context):
    try:
      return method(self, request, context)
    except ServingError as e:
      context.abort(e.code, e.message)
    except Exception as e:  # pylint: disable=broad-except
      _log.exception('gRPC %s failed', method.__name__)
      context.abort(grpc.StatusCode.INTERNAL, f'internal error: {type(e).__name__}: {e}')
  return wrapper


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):

  def __init__(self, store: ModelStore, loop: asyncio.AbstractEventLoop):
    self.store, self.loop = store, loop

  @_errors_as_status
  def Predict(self, request, context):
    servable, name, inputs = api.predict_inputs(self.store, request)
    outputs = asyncio.run_coroutine_threadsafe(
        api.call(self.store, servable, name, inputs), self.loop).result()
    return api.predict_response(servable, name, outputs, request)

  @_errors_as_status
  def Regress(self, request, context):
    return api.regress(self.store, request)

  @_errors_as_status
  def Classify(self, request, context):
    api.resolve(self.store, request.model_spec)
    raise invalid('these models have no classification signature; use Predict or Regress')

  @_errors_as_status
  def GetModelMetadata(self, request, context):
    return api.metadata(self.store, request)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):

  def __init__(self, store: ModelStore):
    self.store = store

  @_errors_as_status
  def GetModelStatus(self, request, context):
    spec = request.model_spec
    return api.status(self.store, spec.name,
                      spec.version.value if spec.HasField('version') else None)


def server(store: ModelStore, loop: asyncio.AbstractEventLoop, address: str,
           max_message_bytes: int, workers: int, reuse_port: bool = False):
  """A grpcio server (not started yet) bound to `address` ('host:port'), and its port."""
  result = grpc.server(
      concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix='grpc'),
      options=[('grpc.max_receive_message_length', max_message_bytes),
               ('grpc.so_reuseport', int(reuse_port))])
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionService(store, loop), result)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(store), result)
  port = result.add_insecure_port(address)
  if port == 0:
    raise OSError(f'cannot listen for gRPC on {address} (port in use?)')
  return result, port
