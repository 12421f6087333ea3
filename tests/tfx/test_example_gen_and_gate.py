"""The typed CsvExampleGen conversion and the anomalies gate, on real Beam and TFDV."""

import os

import apache_beam as beam
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.components.util import examples_utils
from tfx.components.example_validator import executor as validator_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils
from tfx_bsl.coders import csv_decoder

from components.tfx import anomalies_gate
from components.tfx import typed_csv_example_gen
from components.data.features import FLOAT, INT, RAW_FEATURE_TYPES, STRING
from pipeline import schema as schema_lib


STOCK_TYPES = {STRING: csv_decoder.ColumnType.STRING, INT: csv_decoder.ColumnType.INT,
               FLOAT: csv_decoder.ColumnType.FLOAT}


def _convert(tmp_path, text: bytes, stock=False):
  """The rows of a CSV split as tf.Examples, by our reader or by the stock CsvExampleGen's
  per-cell conversion given the same declared column types."""
  split = tmp_path / 'train'
  split.mkdir(exist_ok=True)
  (split / 'ratings.csv').write_bytes(text)
  names = text.split(b'\n', 1)[0].decode().split(',')
  out = str(tmp_path / ('stock' if stock else 'ours'))
  with beam.Pipeline() as pipeline:
    if stock:
      infos = [csv_decoder.ColumnInfo(name, STOCK_TYPES[RAW_FEATURE_TYPES.get(name, STRING)])
               for name in names]
      examples = (pipeline | beam.Create([str(split / 'ratings.csv')])
                  | beam.ParDo(csv_executor._ReadCsvRecordsFromTextFile())  # pylint: disable=protected-access
                  | beam.ParDo(csv_decoder.ParseCSVLine(delimiter=',')) | beam.Keys()
                  | beam.ParDo(csv_executor._ParsedCsvToTfExample(), infos)  # pylint: disable=protected-access
                  | beam.Map(lambda example: example.SerializeToString()))
    else:
      examples = pipeline | typed_csv_example_gen._TypedCsvToExample(  # pylint: disable=protected-access
          {'input_base': str(tmp_path)}, 'train/*.csv')
    _ = examples | beam.io.WriteToTFRecord(out, shard_name_template='')
  return [tf.train.Example.FromString(record)
          for record in tf.compat.v1.io.tf_record_iterator(out)]


def test_declared_types_hold_whatever_the_values_look_like(tmp_path):
  # Every zip code and ID here is digits only: stock CsvExampleGen would infer INT.
  [example] = _convert(tmp_path, (
      'user_id,movie_id,rating,timestamp,zip_code,title,release_year,genres,extra\n'
      '1,10,4.0,881250949,01002,"Heat, The (1995)",1995,Action|Crime,x\n').encode())
  feature = example.features.feature
  assert feature['user_id'].bytes_list.value == [b'1']
  assert feature['movie_id'].bytes_list.value == [b'10']
  assert feature['zip_code'].bytes_list.value == [b'01002']  # leading zero kept
  assert feature['rating'].float_list.value == [4.0]
  assert feature['timestamp'].int64_list.value == [881250949]
  assert feature['release_year'].int64_list.value == [1995]
  assert feature['title'].bytes_list.value == [b'Heat, The (1995)']
  assert feature['extra'].bytes_list.value == [b'x']  # unknown column kept for validation


def test_same_examples_as_the_stock_per_cell_conversion(tmp_path, monkeypatch):
  """Empty cells of every type, quoted commas and newlines, non-ASCII titles, an unknown column,
  a blank line, float rounding; and many rows, read in several blocks."""
  monkeypatch.setattr(typed_csv_example_gen, '_BLOCK_BYTES', 64 << 10)
  header = 'user_id,movie_id,rating,timestamp,age,zip_code,title,release_year,genres,extra\n'
  rows = ['7,1,3.5,881250949,23,01002,"Toy Story (1995)",1995,Animation|Comedy,a',
          ',,,,,,,,,',
          '8,2,0.1,1,,,"Heat, The (1995)",,Action,',
          '9,3,4.333333333333333,2,40,ABC12,"A ""quoted""\nline break",2001,,x y']
  rows += [f'{u},{u % 1682},{1 + u % 9 / 2},{u * 7},{u % 80},{u:05d},Title {u},{1900 + u % 120},'
           f'Drama|War,' for u in range(20000)]
  text = (header + '\n'.join(rows[:2]) + '\n\n' + '\n'.join(rows[2:]) + '\n').encode()
  text = text.replace(b'Title 5,', 'Café – 5,'.encode())  # UTF-8 beyond ASCII
  ours, stock = _convert(tmp_path, text), _convert(tmp_path, text, stock=True)
  assert len(ours) == len(rows)
  assert ([e.SerializeToString(deterministic=True) for e in ours]
          == [e.SerializeToString(deterministic=True) for e in stock])
  empty = ours[1].features.feature
  assert empty['rating'].HasField('float_list') and not empty['rating'].float_list.value
  assert empty['title'].HasField('bytes_list') and not empty['title'].bytes_list.value


def test_a_row_with_the_wrong_field_count_fails_naming_the_file(tmp_path):
  with pytest.raises(Exception, match=r'ratings\.csv.*(Expected 3 columns|columns)'):
    _convert(tmp_path, b'user_id,movie_id,rating\n1,2,3.0\n1,2\n')


def test_executor_writes_every_row_of_every_split_once_with_stock_artifact_properties(tmp_path):
  base = tmp_path / 'input'
  for split, users in (('train', range(0, 2000)), ('eval', range(5000, 5300))):
    (base / split).mkdir(parents=True)
    rows = ''.join(f'{user},{user % 7},4.0,{1000 + user}\n' for user in users)
    (base / split / 'ratings.csv').write_text('user_id,movie_id,rating,timestamp\n' + rows)
  # A split of three CSV files.
  (base / 'train' / 'ratings.csv').rename(base / 'train' / 'part-0.csv')
  for part, users in ((1, range(2000, 2500)), (2, range(2500, 2600))):
    rows = ''.join(f'{user},{user % 7},4.0,{1000 + user}\n' for user in users)
    (base / 'train' / f'part-{part}.csv').write_text('user_id,movie_id,rating,timestamp\n'
                                                     + rows)
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  input_config = example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name=split, pattern=f'{split}/*.csv')
      for split in ('train', 'eval')])
  properties = {'input_base': str(base),
                'input_config': proto_utils.proto_to_json(input_config),
                'output_config': proto_utils.proto_to_json(example_gen_pb2.Output()),
                'output_data_format': example_gen_pb2.FORMAT_TF_EXAMPLE,
                'output_file_format': example_gen_pb2.FORMAT_TFRECORDS_GZIP}
  typed_csv_example_gen.Executor().Do({}, {'examples': [examples]}, properties)

  assert artifact_utils.decode_split_names(examples.split_names) == ['train', 'eval']
  assert examples_utils.get_payload_format(examples) == example_gen_pb2.FORMAT_TF_EXAMPLE
  assert examples_utils.get_file_format(examples) == 'tfrecords_gzip'
  for split in ('train', 'eval'):  # Beam's shard names, all of them
    names = sorted(os.listdir(tmp_path / 'examples' / f'Split-{split}'))
    assert names == [f'data_tfrecord-{i:05d}-of-{len(names):05d}.gz' for i in range(len(names))]
  assert sorted(os.listdir(tmp_path / 'examples')) == ['Split-eval', 'Split-train']  # no staging
  for split, first, count in (('train', 0, 2600), ('eval', 5000, 300)):
    files = sorted(tf.io.gfile.glob(str(tmp_path / 'examples' / f'Split-{split}' / '*.gz')))
    users = [tf.train.Example.FromString(record.numpy()).features.feature['user_id'].bytes_list
             .value[0] for record in tf.data.TFRecordDataset(files, compression_type='GZIP')]
    assert sorted(users) == sorted(str(user).encode() for user in range(first, first + count))


def _anomalies_dir(tmp_path, frame):
  schema = schema_lib.schema_for_dataset(False, 1.0, 5.0)
  stats = tfdv.generate_statistics_from_dataframe(frame)
  anomalies = tfdv.validate_statistics(stats, schema)
  folder = tmp_path / 'Split-train'
  folder.mkdir()
  (folder / validator_executor.DEFAULT_FILE_NAME).write_bytes(anomalies.SerializeToString())
  return str(tmp_path)


GOOD = dict(user_id=['1'], movie_id=['10'], rating=[4.0], timestamp=[1], title=['A (1995)'],
            release_year=[1995], genres=['Drama'])


def test_gate_passes_clean_data(tmp_path):
  assert anomalies_gate.describe_anomalies(_anomalies_dir(tmp_path, pd.DataFrame(GOOD)),
                                           ['train']) == []


def test_gate_names_split_feature_and_problem(tmp_path):
  bad = pd.DataFrame(dict(GOOD, rating=[9.0], new_column=['surprise']))
  problems = anomalies_gate.describe_anomalies(_anomalies_dir(tmp_path, bad), ['train'])
  text = '\n'.join(problems)
  assert "split train, feature 'rating'" in text
  assert "split train, feature 'new_column'" in text
