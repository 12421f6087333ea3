"""TF Serving's REST JSON encoding of tensors, both ways, and of tf.Examples for `:regress`.

The rules follow TF Serving's REST API: a request holds either `instances` (row format: a list
with one entry per batch row, an object per row when the signature has named inputs) or `inputs`
(column format: each input's whole tensor). Strings are UTF-8 JSON strings, or `{"b64": ...}`
for bytes. Answers mirror the request: `predictions` (one entry per row) or `outputs`; a string
output whose name ends in `_bytes` is sent as `{"b64": ...}`.
"""

import base64
import binascii
from typing import Any, Dict, List, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from serving.status import invalid

_INTS = {types_pb2.DT_INT8, types_pb2.DT_INT16, types_pb2.DT_INT32, types_pb2.DT_INT64,
         types_pb2.DT_UINT8, types_pb2.DT_UINT16, types_pb2.DT_UINT32, types_pb2.DT_UINT64}
_FLOATS = {types_pb2.DT_HALF, types_pb2.DT_BFLOAT16, types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE}


def _b64(value: Dict[str, Any], where: str) -> bytes:
  if set(value) != {'b64'} or not isinstance(value['b64'], str):
    raise invalid(f'{where}: an object value must be {{"b64": "<base64 string>"}}')
  try:
    return base64.b64decode(value['b64'], validate=True)
  except (binascii.Error, ValueError):
    raise invalid(f'{where}: "b64" is not valid base64') from None


def _leaf(value, dtype: int, where: str):
  """One JSON scalar as a value of `dtype`, or a clear error."""
  name = types_pb2.DataType.Name(dtype)
  if dtype == types_pb2.DT_STRING:
    if isinstance(value, str):
      return value.encode('utf-8')
    if isinstance(value, dict):
      return _b64(value, where)
  elif dtype == types_pb2.DT_BOOL:
    if isinstance(value, bool):
      return value
  elif dtype in _INTS:
    if isinstance(value, int) and not isinstance(value, bool):
      return value
  elif dtype in _FLOATS:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return value
    if value in ('NaN', 'Infinity', '-Infinity'):
      return float(value.replace('Infinity', 'inf'))
  else:
    raise invalid(f'{where}: inputs of type {name} are not supported')
  return _type_error(value, name, where)


def _type_error(value, name: str, where: str):
  raise invalid(f'{where}: JSON value {value!r} is not of the expected type {name}')


def _shape_and_leaves(value, where: str) -> Tuple[Tuple[int, ...], List[Any]]:
  if isinstance(value, list):
    if not value:
      return (0,), []
    parts = [_shape_and_leaves(item, where) for item in value]
    inner = parts[0][0]
    if any(shape != inner for shape, _ in parts):
      raise invalid(f'{where}: lists of different lengths (a tensor must be rectangular)')
    return (len(value),) + inner, [leaf for _, leaves in parts for leaf in leaves]
  return (), [value]


def to_array(value, dtype: int, where: str) -> np.ndarray:
  """A JSON (nested lists of) value(s) as a numpy array of the signature's dtype."""
  shape, leaves = _shape_and_leaves(value, where)
  converted = [_leaf(leaf, dtype, where) for leaf in leaves]
  numpy_dtype = object if dtype == types_pb2.DT_STRING else tf.dtypes.as_dtype(dtype).as_numpy_dtype
  array = np.empty(len(converted), dtype=numpy_dtype)
  array[:] = converted
  return array.reshape(shape)


def request_inputs(body: Dict[str, Any], input_dtypes: Dict[str, int]
                   ) -> Tuple[Dict[str, np.ndarray], bool]:
  """The input arrays of a `:predict` body and whether it used the row (`instances`) format."""
  if ('instances' in body) == ('inputs' in body):
    raise invalid('the request must have exactly one of "instances" (row format) or "inputs" '
                  '(column format)')
  names = sorted(input_dtypes)
  if 'instances' in body:
    instances = body['instances']
    if not isinstance(instances, list) or not instances:
      raise invalid('"instances" must be a non-empty list')
    named = all(isinstance(row, dict) and set(row) != {'b64'} for row in instances)
    if not named:
      if len(names) != 1:
        raise invalid(f'"instances" rows must be objects naming the inputs {names}')
      columns = {names[0]: instances}
    else:
      keys = set(instances[0])
      for i, row in enumerate(instances):
        if set(row) != keys:
          raise invalid(f'"instances"[{i}] has inputs {sorted(row)}, row 0 has {sorted(keys)}: '
                        'every row must name the same inputs')
      columns = {key: [row[key] for row in instances] for key in keys}
    return _arrays(columns, input_dtypes, 'instances'), True
  inputs = body['inputs']
  if not (isinstance(inputs, dict) and set(inputs) != {'b64'}):
    if len(names) != 1:
      raise invalid(f'"inputs" must be an object naming the inputs {names}')
    inputs = {names[0]: inputs}
  return _arrays(inputs, input_dtypes, 'inputs'), False


def _arrays(columns, input_dtypes, where):
  unknown = sorted(set(columns) - set(input_dtypes))
  missing = sorted(set(input_dtypes) - set(columns))
  if unknown or missing:
    raise invalid(f'{where}: the signature takes the inputs {sorted(input_dtypes)}'
                  + (f'; unknown: {unknown}' if unknown else '')
                  + (f'; missing: {missing}' if missing else ''))
  return {name: to_array(value, input_dtypes[name], f'{where}: input "{name}"')
          for name, value in columns.items()}


def _json_value(array: np.ndarray, as_b64: bool):
  if array.dtype == object:
    def text(value: bytes):
      if not as_b64:
        try:
          return value.decode('utf-8')
        except UnicodeDecodeError:
          pass
      return {'b64': base64.b64encode(value).decode('ascii')}
    return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()
  return array.tolist()


def response(outputs: Dict[str, np.ndarray], row_format: bool) -> Dict[str, Any]:
  """`{"predictions": ...}` (row format) or `{"outputs": ...}` (column format)."""
  values = {name: _json_value(array, name.endswith('_bytes')) for name, array in outputs.items()}
  if not row_format:
    return {'outputs': next(iter(values.values())) if len(values) == 1 else values}
  sizes = {name: (array.shape[0] if array.ndim else None) for name, array in outputs.items()}
  if len(set(sizes.values())) != 1 or None in sizes.values():
    raise invalid(f'outputs of different batch sizes {sizes} cannot be returned as rows; '
                  'send "inputs" (column format)')
  if len(values) == 1:
    return {'predictions': next(iter(values.values()))}
  rows = next(iter(sizes.values()))
  return {'predictions': [{name: value[i] for name, value in values.items()}
                          for i in range(rows)]}


def _feature(value, where: str) -> tf.train.Feature:
  values = value if isinstance(value, list) else [value]
  if all(isinstance(v, bool) for v in values) and values:
    raise invalid(f'{where}: booleans are not a tf.Example feature type')
  if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  if all(isinstance(v, (str, dict)) for v in values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[v.encode('utf-8') if isinstance(v, str) else _b64(v, where) for v in values]))
  raise invalid(f'{where}: a feature is a number, a string, {{"b64": ...}} or a list of one kind')


def examples(body: Dict[str, Any]) -> List[tf.train.Example]:
  """The tf.Examples of a `:regress`/`:classify` body (`examples`, optional `context`)."""
  rows = body.get('examples')
  if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
    raise invalid('"examples" must be a non-empty list of objects (feature name -> value)')
  context = body.get('context', {})
  if not isinstance(context, dict):
    raise invalid('"context" must be an object (feature name -> value)')
  result = []
  for i, row in enumerate(rows):
    example = tf.train.Example()
    for name, value in {**context, **row}.items():
      example.features.feature[name].CopyFrom(_feature(value, f'examples[{i}]: feature "{name}"'))
    result.append(example)
  return result
