"""TFX's StatisticsGen, whose examples are read and decoded a batch at a time in C++.

Stock StatisticsGen reads a split through its TFXIO's Beam source: Beam's ReadFromTFRecord,
one Python element per example (a Python checksum each), then batches to decode. TFDV's
`sample_rate` samples after that, so reading was most of StatisticsGen's time on big data
(docs/performance.md). This executor gives StatisticsGen a Beam source that reads each file
with tfx_bsl's own `TFExampleRecord.RecordBatches` (tf.data's C++ reader and tfx_bsl's batch
decoder): the same Arrow record batches, one element per batch. Everything else is TFX's
executor, TFDV's statistics and sampling included.

TFX's executor looks up the split's TFXIO inside `Do`, so the lookup is replaced for the
duration of `Do` only (a test checks the statistics against stock StatisticsGen's).
"""

from typing import Any, Dict, Iterable, List, Optional
from unittest import mock

import apache_beam as beam
import pyarrow as pa
from tfx.components import StatisticsGen as StockStatisticsGen
from tfx.components.statistics_gen import executor as statistics_executor
from tfx.components.util import tfxio_utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx_bsl.tfxio import dataset_options
from tfx_bsl.tfxio import tf_example_record

_BATCH_SIZE = 1000  # examples per record batch (Beam's batching of the stock source: <= 1000)
_stock_get_split_tfxio = tfxio_utils.get_split_tfxio


class _RecordBatchesOfFile(beam.DoFn):
  """A TFRecord file of tf.Examples -> its decoded record batches, in file order."""

  def __init__(self, schema):
    self._schema = schema

  def process(self, path: str) -> Iterable[pa.RecordBatch]:
    return tf_example_record.TFExampleRecord(path, schema=self._schema).RecordBatches(
        dataset_options.RecordBatchesOptions(batch_size=_BATCH_SIZE, drop_final_batch=False,
                                             num_epochs=1, shuffle=False))


class _BatchReadTFXIO:
  """The split's stock TFXIO, with a Beam source that reads whole batches."""

  def __init__(self, stock, patterns: List[str], schema):
    self._stock, self._patterns, self._schema = stock, patterns, schema

  def BeamSource(self, batch_size: Optional[int] = None) -> beam.PTransform:  # pylint: disable=invalid-name
    del batch_size  # _BATCH_SIZE
    files = sorted(path for pattern in self._patterns for path in fileio.glob(pattern))
    if not files:
      raise ValueError(f'no files match {self._patterns}')

    @beam.ptransform_fn
    def read(pipeline):
      return (pipeline
              | 'Files' >> beam.Create(files)
              | 'ReadRecordBatches' >> beam.ParDo(_RecordBatchesOfFile(self._schema)))
    return read()  # pylint: disable=no-value-for-parameter

  def __getattr__(self, name):
    return getattr(self._stock, name)


def _batch_read_tfxio(examples, split, telemetry_descriptors=None, schema=None, **kwargs):
  stock = _stock_get_split_tfxio(examples, split, telemetry_descriptors=telemetry_descriptors,
                                 schema=schema, **kwargs)
  patterns, formats = tfxio_utils.get_file_format_and_patterns(examples, split)
  payload, _ = tfxio_utils.resolve_payload_format_and_data_view_uri(examples)
  if (kwargs or payload != example_gen_pb2.FORMAT_TF_EXAMPLE
      or any('tfrecords' not in f for f in formats)):
    return stock  # not tf.Example TFRecords: the stock reader
  return _BatchReadTFXIO(stock, patterns, schema)


class Executor(statistics_executor.Executor):

  def Do(self, input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]],
         exec_properties: Dict[str, Any]) -> None:
    with mock.patch.object(statistics_executor.tfxio_utils, 'get_split_tfxio',
                           _batch_read_tfxio):
      super().Do(input_dict, output_dict, exec_properties)


class StatisticsGen(StockStatisticsGen):
  """The stock StatisticsGen component with this module's executor."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
