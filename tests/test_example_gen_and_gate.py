"""The typed CsvExampleGen conversion and the anomalies gate, on real Beam and TFDV."""

import apache_beam as beam
import pandas as pd
import tensorflow_data_validation as tfdv
from apache_beam.testing import util as beam_util
from tfx.components.example_validator import executor as validator_executor

from components import anomalies_gate
from components import typed_csv_example_gen
from pipeline import schema as schema_lib


def test_declared_types_hold_whatever_the_values_look_like(tmp_path):
  # Every zip code and ID here is digits only: stock CsvExampleGen would infer INT.
  split = tmp_path / 'train'
  split.mkdir()
  (split / 'ratings.csv').write_text(
      'user_id,movie_id,rating,timestamp,zip_code,title,release_year,genres,extra\n'
      '1,10,4.0,881250949,01002,"Heat, The (1995)",1995,Action|Crime,x\n', encoding='utf-8')
  with beam.Pipeline() as pipeline:
    examples = pipeline | typed_csv_example_gen._TypedCsvToExample(  # pylint: disable=protected-access
        {'input_base': str(tmp_path)}, 'train/*.csv')

    def check(actual):
      assert len(actual) == 1
      feature = actual[0].features.feature
      assert feature['user_id'].bytes_list.value == [b'1']
      assert feature['movie_id'].bytes_list.value == [b'10']
      assert feature['zip_code'].bytes_list.value == [b'01002']  # leading zero kept
      assert feature['rating'].float_list.value == [4.0]
      assert feature['timestamp'].int64_list.value == [881250949]
      assert feature['release_year'].int64_list.value == [1995]
      assert feature['title'].bytes_list.value == [b'Heat, The (1995)']
      assert feature['extra'].bytes_list.value == [b'x']  # unknown column kept for validation

    beam_util.assert_that(examples, check)


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
