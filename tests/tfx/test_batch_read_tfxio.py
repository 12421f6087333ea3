"""The batch-reading TFXIO (components/tfx/batch_read_tfxio.py) gives the Arrow record batches
of tfx_bsl's stock TFExampleRecord source: the same rows, projected the same way."""

import json

import apache_beam as beam
import pyarrow as pa
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.tfxio import tf_example_record

from components.tfx import batch_read_tfxio

SCHEMA = schema_pb2.Schema()
for name, kind in (('user_id', schema_pb2.BYTES), ('rating', schema_pb2.FLOAT),
                   ('age', schema_pb2.INT)):
  SCHEMA.feature.add(name=name, type=kind)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """Two gzipped TFRecord files of 2,500 examples (more than one batch of the source)."""
  folder = tmp_path_factory.mktemp('tfxio')
  paths = []
  for part in range(2):
    path = str(folder / f'part-{part}.gz')
    with tf.io.TFRecordWriter(path, options='GZIP') as writer:
      for row in range(2500 * part, 2500 * (part + 1)):
        example = tf.train.Example()
        example.features.feature['user_id'].bytes_list.value.append(f'u{row % 97}'.encode())
        example.features.feature['rating'].float_list.value.append(row % 5 + 0.5)
        if row % 3:  # some examples without the feature
          example.features.feature['age'].int64_list.value.append(row % 60)
        writer.write(example.SerializeToString())
    paths.append(path)
  return str(folder / 'part-*.gz')


def _rows(tfxio, folder):
  """Every row the TFXIO's Beam source yields, sorted, and the columns of its batches (written
  out by the pipeline as JSON lines, then read)."""
  def lines(batch):
    assert isinstance(batch, pa.RecordBatch)
    for row in batch.to_pylist():
      yield json.dumps([batch.schema.names, sorted((k, repr(v)) for k, v in row.items())])
  prefix = str(folder / 'rows')
  with beam.Pipeline() as pipeline:
    _ = (pipeline | tfxio.BeamSource() | beam.FlatMap(lines)
         | beam.io.WriteToText(prefix, shard_name_template=''))
  with open(prefix, encoding='utf-8') as f:
    parsed = [json.loads(line) for line in f]
  return sorted(json.dumps(row) for _, row in parsed), {tuple(names) for names, _ in parsed}


@pytest.mark.parametrize('raw_record_column_name', [None, '__raw__'])
def test_the_same_rows_as_the_stock_source(files, raw_record_column_name, tmp_path):
  stock = tf_example_record.TFExampleRecord(files, schema=SCHEMA,
                                            raw_record_column_name=raw_record_column_name)
  ours = batch_read_tfxio.batch_read(stock)
  assert isinstance(ours, batch_read_tfxio.BatchReadTFExampleRecord)
  rows, columns = _rows(ours, tmp_path / 'ours')
  assert len(rows) == 5000
  assert (rows, columns) == _rows(stock, tmp_path / 'stock')


def test_a_projection_reads_the_projected_columns_only(files, tmp_path):
  stock = tf_example_record.TFExampleRecord(files, schema=SCHEMA)
  ours = batch_read_tfxio.batch_read(stock).Project(['rating'])
  assert isinstance(ours.projected, batch_read_tfxio.BatchReadTFExampleRecord)
  rows, columns = _rows(ours, tmp_path / 'ours')
  assert columns == {('rating',)} and len(rows) == 5000
  assert (rows, columns) == _rows(stock.Project(['rating']), tmp_path / 'stock')
  ours_config, stock_config = (t.TensorAdapterConfig() for t in (ours,
                                                                   stock.Project(['rating'])))
  assert ours_config.arrow_schema == stock_config.arrow_schema
  assert ours_config.tensor_representations == stock_config.tensor_representations


def test_other_tfxios_are_left_as_they_are(files):
  projected = tf_example_record.TFExampleRecord(files, schema=SCHEMA).Project(['rating'])
  assert batch_read_tfxio.batch_read(projected) is projected


def test_no_files_is_an_error_naming_the_pattern(tmp_path):
  ours = batch_read_tfxio.batch_read(tf_example_record.TFExampleRecord(
      str(tmp_path / 'none-*.gz'), schema=SCHEMA))
  with pytest.raises(ValueError, match='no files match .*none-'):
    ours.BeamSource()
