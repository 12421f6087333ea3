"""TFX's Transform, whose examples are read and written a batch at a time in C++.

Stock Transform reads its input twice (to analyse, then to transform) through its TFXIO's Beam
source, one Python element per example, and hands Beam's WriteToTFRecord one Python element per
transformed example (components/tfx/tfrecord_files.py says what that costs). This executor
reads through the batch-reading source of components/tfx/batch_read_tfxio.py and writes each
encoded batch whole through `tfrecord_files`: the same records, in gzipped TFRecord files of
the same names. Everything else is TFX's executor.

TFX's executor makes its `TransformProcessor` inside `Do`, so the processor is replaced for the
duration of `Do` only (a test checks that the transformed examples are those of the stock
executor).
"""

import os
from typing import Any, Dict, Iterable, List
from unittest import mock

import apache_beam as beam
import pyarrow as pa
from tfx.components import Transform as StockTransform
from tfx.components.transform import executor as transform_executor
from tfx.components.transform import labels
from tfx.dsl.components.base import executor_spec
from tfx_bsl.coders import example_coder

from components.tfx import batch_read_tfxio
from components.tfx import tfrecord_files

_KEY = transform_executor._TRANSFORM_INTERNAL_FEATURE_FOR_KEY  # pylint: disable=protected-access
_StockProcessor = transform_executor.TransformProcessor


class _EncodeBatches(beam.DoFn):
  """(transformed RecordBatch, pass-through features) -> the batch's serialized tf.Examples
  (without Transform's internal key column, which the stock writer drops too)."""

  def __init__(self, schema):
    self._schema = schema

  def setup(self):
    self._encoder = example_coder.RecordBatchToExamplesEncoder(self._schema)

  def process(self, element) -> Iterable[List[bytes]]:
    record_batch, _ = element
    if _KEY in record_batch.schema.names:
      index = record_batch.schema.names.index(_KEY)
      record_batch = pa.RecordBatch.from_arrays(
          [c for i, c in enumerate(record_batch.columns) if i != index],
          [n for i, n in enumerate(record_batch.schema.names) if i != index])
    yield self._encoder.encode(record_batch)


class _Processor(_StockProcessor):

  def _CreateTFXIO(self, dataset, schema):  # pylint: disable=invalid-name
    return batch_read_tfxio.batch_read(super()._CreateTFXIO(dataset, schema))

  @staticmethod
  @beam.ptransform_fn
  def _EncodeAndWrite(pcoll, schema, file_format: str, output_path: str):  # pylint: disable=invalid-name
    if file_format != labels.FORMAT_TFRECORD:
      return pcoll | _StockProcessor._EncodeAndWrite(  # pylint: disable=protected-access
          schema=schema, file_format=file_format, output_path=output_path)
    split_dir = os.path.dirname(output_path)  # <uri>/Split-<name>
    staging = os.path.join(os.path.dirname(split_dir), f'.staging-{os.path.basename(split_dir)}')
    return (pcoll
            | 'EncodeBatches' >> beam.ParDo(_EncodeBatches(schema))
            | 'WriteTFRecordFiles' >> tfrecord_files.WriteTFRecordFiles(output_path, staging))


class Executor(transform_executor.Executor):

  def Do(self, input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]],
         exec_properties: Dict[str, Any]) -> None:
    with mock.patch.object(transform_executor, 'TransformProcessor', _Processor):
      super().Do(input_dict, output_dict, exec_properties)


class Transform(StockTransform):
  """The stock Transform component with this module's executor."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
