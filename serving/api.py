"""TF Serving's API calls over a ModelStore, in TF Serving's own protos: the one implementation
behind both front ends (serving/rest.py and serving/grpc_api.py).
"""

from typing import Optional

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.apis import status_pb2
from tensorflow.core.protobuf import error_codes_pb2

from serving.model_store import AVAILABLE, END, LOADING, ModelStore, Servable
from serving.status import invalid

_STATES = {
    LOADING: get_model_status_pb2.ModelVersionStatus.LOADING,
    AVAILABLE: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    END: get_model_status_pb2.ModelVersionStatus.END,
}


def resolve(store: ModelStore, spec: model_pb2.ModelSpec) -> Servable:
  """The servable a ModelSpec names: a version, a label, or the latest."""
  version = spec.version.value if spec.HasField('version') else None
  label = spec.version_label if spec.WhichOneof('version_choice') == 'version_label' else None
  return store.get(spec.name, version=version, label=label)


def _answered_spec(servable: Servable, signature_name: str) -> model_pb2.ModelSpec:
  spec = model_pb2.ModelSpec(name=servable.name, signature_name=signature_name)
  spec.version.value = servable.version
  return spec


async def call(store: ModelStore, servable: Servable, signature_name: str, inputs) -> dict:
  """A signature call, merged with concurrent ones when the store has a batcher."""
  if store.batcher is None:
    return servable.run(signature_name, inputs)
  return await store.batcher.submit(servable, signature_name, inputs)


def predict_inputs(store: ModelStore, request: predict_pb2.PredictRequest):
  """(servable, signature name, input arrays) of a PredictRequest, checked."""
  servable = resolve(store, request.model_spec)
  name = request.model_spec.signature_name or 'serving_default'
  expected = servable.input_dtypes(name)
  inputs = {}
  for key, proto in request.inputs.items():
    if key in expected and proto.dtype != expected[key]:
      raise invalid(f'input "{key}" is {tf.dtypes.as_dtype(proto.dtype).name}; the signature '
                    f'"{name}" wants {tf.dtypes.as_dtype(expected[key]).name}')
    try:
      inputs[key] = tf.make_ndarray(proto)
    except (TypeError, ValueError) as e:
      raise invalid(f'input "{key}" is not a valid TensorProto: {e}') from None
  unknown = sorted(set(request.output_filter) - set(servable.signature(name).outputs))
  if unknown:
    raise invalid(f'output_filter names {unknown}; the outputs are '
                  f'{sorted(servable.signature(name).outputs)}')
  return servable, name, inputs


def predict_response(servable: Servable, signature_name: str, outputs,
                     request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
  keep = set(request.output_filter) or set(outputs)
  response = predict_pb2.PredictResponse(model_spec=_answered_spec(servable, signature_name))
  for key, value in outputs.items():
    if key in keep:
      _fill_tensor_proto(response.outputs[key], value)
  return response


def _fill_tensor_proto(proto, array) -> None:
  """tf.make_tensor_proto's result for an output array, built directly (4x faster)."""
  if array.dtype == object:
    proto.dtype = tf.string.as_datatype_enum
    proto.string_val.extend(array.ravel().tolist())
  else:
    proto.dtype = tf.dtypes.as_dtype(array.dtype).as_datatype_enum
    proto.tensor_content = np.ascontiguousarray(array).tobytes()
  for size in array.shape:
    proto.tensor_shape.dim.add(size=size)


def regress(store: ModelStore, request: regression_pb2.RegressionRequest
            ) -> regression_pb2.RegressionResponse:
  servable = resolve(store, request.model_spec)
  name = request.model_spec.signature_name or 'serving_default'
  which = request.input.WhichOneof('kind')
  if which == 'example_list':
    examples = list(request.input.example_list.examples)
  elif which == 'example_list_with_context':
    context = request.input.example_list_with_context.context
    examples = []
    for example in request.input.example_list_with_context.examples:
      merged = tf.train.Example()
      merged.CopyFrom(context)
      merged.MergeFrom(example)
      examples.append(merged)
  else:
    raise invalid('the request has no input examples')
  if not examples:
    raise invalid('the request has no input examples')
  values = servable.regress(name, examples)
  response = regression_pb2.RegressionResponse(model_spec=_answered_spec(servable, name))
  for value in values:
    response.result.regressions.add(value=float(value))
  return response


def metadata(store: ModelStore, request: get_model_metadata_pb2.GetModelMetadataRequest
             ) -> get_model_metadata_pb2.GetModelMetadataResponse:
  fields = list(request.metadata_field) or ['signature_def']
  if fields != ['signature_def']:
    raise invalid(f'Metadata field(s) {fields} not supported: only "signature_def" is')
  servable = resolve(store, request.model_spec)
  response = get_model_metadata_pb2.GetModelMetadataResponse(
      model_spec=_answered_spec(servable, ''))
  signatures = get_model_metadata_pb2.SignatureDefMap()
  for key, signature in servable.signature_defs.items():
    signatures.signature_def[key].CopyFrom(signature)
  response.metadata['signature_def'].Pack(signatures)
  return response


def status(store: ModelStore, name: str, version: Optional[int] = None
           ) -> get_model_status_pb2.GetModelStatusResponse:
  response = get_model_status_pb2.GetModelStatusResponse()
  for number, state, error in store.status(name, version):
    status = status_pb2.StatusProto(
        error_code=error_codes_pb2.UNKNOWN if error else error_codes_pb2.OK,
        error_message=error)
    response.model_version_status.add(version=number, state=_STATES[state], status=status)
  return response


def spec_from_path(name: str, version: Optional[str], label: Optional[str],
                   signature_name: str = '') -> model_pb2.ModelSpec:
  """The ModelSpec of a REST path `/v1/models/NAME[/versions/N|/labels/L]`."""
  spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
  if version is not None:
    spec.version.value = int(version)
  elif label is not None:
    spec.version_label = label
  return spec

