"""tfx_bsl's TFXIO for TFRecord files of tf.Examples, with a Beam source that reads and decodes
a batch at a time in C++.

The stock `TFExampleRecord.BeamSource` reads with Beam's ReadFromTFRecord, one Python element
per example (a Python checksum each), and only then batches and decodes: on big data that
reading was most of StatisticsGen's time, and Transform reads its input twice (to analyse, then
to transform; docs/performance.md). This source reads each file with the same class's own
`RecordBatches` (tf.data's C++ reader and tfx_bsl's batch decoder): the same Arrow record
batches, one Beam element per batch, files in parallel. Everything else, projection included,
is `TFExampleRecord`'s.
"""

from typing import Iterable, List, Optional

import apache_beam as beam
import pyarrow as pa
from tfx.dsl.io import fileio
from tfx_bsl.tfxio import dataset_options
from tfx_bsl.tfxio import tf_example_record

BATCH_SIZE = 1000  # examples per record batch (the stock source's batching: <= 1000)


class _RecordBatchesOfFile(beam.DoFn):
  """A TFRecord file of tf.Examples -> its decoded record batches, in file order."""

  def __init__(self, schema, raw_record_column_name: Optional[str]):
    self._schema, self._raw_record_column_name = schema, raw_record_column_name

  def process(self, path: str) -> Iterable[pa.RecordBatch]:
    return tf_example_record.TFExampleRecord(
        path, schema=self._schema, raw_record_column_name=self._raw_record_column_name
    ).RecordBatches(dataset_options.RecordBatchesOptions(
        batch_size=BATCH_SIZE, drop_final_batch=False, num_epochs=1, shuffle=False))


class BatchReadTFExampleRecord(tf_example_record.TFExampleRecord):
  """`TFExampleRecord` whose Beam source reads whole batches (see the module docstring)."""

  def BeamSource(self, batch_size: Optional[int] = None) -> beam.PTransform:  # pylint: disable=invalid-name
    del batch_size  # BATCH_SIZE
    files = sorted(path for pattern in self._file_pattern for path in fileio.glob(pattern))
    if not files:
      raise ValueError(f'no files match {self._file_pattern}')
    read_file = _RecordBatchesOfFile(self._schema, self.raw_record_column_name)

    @beam.ptransform_fn
    def read(pipeline):
      return (pipeline
              | 'Files' >> beam.Create(files)
              | 'ReadRecordBatches' >> beam.ParDo(read_file))
    return read()  # pylint: disable=no-value-for-parameter

  def _ProjectImpl(self, tensor_names: List[str]) -> 'BatchReadTFExampleRecord':  # pylint: disable=invalid-name
    projected = super()._ProjectImpl(tensor_names)
    return BatchReadTFExampleRecord(
        self._file_pattern, schema=projected._schema,  # pylint: disable=protected-access
        raw_record_column_name=self.raw_record_column_name,
        telemetry_descriptors=self.telemetry_descriptors)


def batch_read(tfxio):
  """`tfxio` as a `BatchReadTFExampleRecord` where it is a plain `TFExampleRecord` (TFRecords
  of tf.Examples), else unchanged."""
  if type(tfxio) is not tf_example_record.TFExampleRecord:  # pylint: disable=unidiomatic-typecheck
    return tfxio
  return BatchReadTFExampleRecord(
      tfxio._file_pattern, schema=tfxio._schema,  # pylint: disable=protected-access
      raw_record_column_name=tfxio.raw_record_column_name,
      telemetry_descriptors=tfxio.telemetry_descriptors)
