"""TF Serving warm-up records, written into every export at `assets.extra/tf_serving_warmup_requests`.

TF Serving replays these requests when it loads a model version, before it marks the version
AVAILABLE, so the first client request does not pay for initialising the graph (serving/server.py
does the same). The file is a TFRecord of `tensorflow.serving.PredictionLog` protos, one request per
signature, at most 1000 as TF Serving reads no more.
"""

import os
from typing import Dict, Iterable, List

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis import regression_pb2

WARMUP_FILE = os.path.join('assets.extra', 'tf_serving_warmup_requests')
MAX_RECORDS = 1000


def predict_log(signature_name: str, inputs: Dict[str, np.ndarray]) -> prediction_log_pb2.PredictionLog:
  request = predict_pb2.PredictRequest()
  request.model_spec.signature_name = signature_name
  for name, value in inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
  return prediction_log_pb2.PredictionLog(
      predict_log=prediction_log_pb2.PredictLog(request=request))


def regress_log(signature_name: str, examples: Iterable[tf.train.Example]
                ) -> prediction_log_pb2.PredictionLog:
  request = regression_pb2.RegressionRequest()
  request.model_spec.signature_name = signature_name
  request.input.example_list.examples.extend(examples)
  return prediction_log_pb2.PredictionLog(
      regress_log=prediction_log_pb2.RegressLog(request=request))


def write(export_dir: str, logs: List[prediction_log_pb2.PredictionLog]) -> str:
  """Writes `logs` as the export's warm-up file (inside the export folder, before any push)."""
  if len(logs) > MAX_RECORDS:
    raise ValueError(f'{len(logs)} warm-up requests: TF Serving reads at most {MAX_RECORDS}')
  path = os.path.join(export_dir, WARMUP_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for log in logs:
      writer.write(log.SerializeToString())
  return path


def read(model_dir: str) -> List[prediction_log_pb2.PredictionLog]:
  """The warm-up requests of a SavedModel folder ([] when it has none)."""
  path = os.path.join(model_dir, WARMUP_FILE)
  if not tf.io.gfile.exists(path):
    return []
  return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(path).take(MAX_RECORDS)]
