"""StatisticsGen describes a random sample of big data (TFDV's sample_rate), all of small data.

The rate comes from the prepared data's size and `--statistics-sample`; the real CsvExampleGen
and StatisticsGen of the built pipeline, on real MovieLens 100K, must describe about that share.
"""

import argparse
import json
import os

import pytest
import tensorflow_data_validation as tfdv

from pipeline import cli
from pipeline import configs
from pipeline import partial
from pipeline import pipeline as pipeline_def


@pytest.mark.parametrize('cap, ratings, rate', [
    (2_000_000, 0, 1.0),              # not counted (a cluster's data root): all
    (2_000_000, 100_000, 1.0),
    (2_000_000, 2_000_000, 1.0),
    (2_000_000, 25_000_000, 0.08),
    (0, 25_000_000, 1.0),             # 0: all
])
def test_the_rate_keeps_about_the_configured_number_of_ratings(cap, ratings, rate):
  settings = configs.PipelineSettings(statistics_sample_ratings=cap)
  assert settings.statistics_sample_rate(ratings) == pytest.approx(rate)


def test_a_negative_sample_is_refused_by_the_flags():
  parser = argparse.ArgumentParser()
  cli.add_settings_arguments(parser)
  with pytest.raises(ValueError, match='--statistics-sample must be 0 .* got -1'):
    cli.settings_from_args(parser.parse_args(['--statistics-sample', '-1']), 'out')
  args = parser.parse_args([])
  assert (cli.settings_from_args(args, 'out').statistics_sample_ratings
          == configs.DEFAULT_STATISTICS_SAMPLE_RATINGS)


def _statistics_pipeline(tmp_path, ml100k_dir, sample_ratings):
  """(data, settings, the pipeline's CsvExampleGen and StatisticsGen) over all of ML-100K."""
  data = partial.prepared_with_schema(ml100k_dir, str(tmp_path))
  settings = configs.PipelineSettings(output_dir=str(tmp_path / 'out'),
                                      statistics_sample_ratings=sample_ratings)
  return (data, settings) + tuple(pipeline_def.examples_and_statistics(settings, data))


def test_statistics_gen_describes_a_sample_of_the_rate(tmp_path, ml100k_dir):
  data, settings, example_gen, node = _statistics_pipeline(tmp_path, ml100k_dir, 30_000)
  assert data.num_ratings == 100_000
  assert json.loads(node.exec_properties['stats_options_json'])['_sample_rate'] == 0.3
  partial.run_components(settings, [example_gen, node])
  [uri] = [os.path.join(root, 'Split-train') for root, dirs, _ in
           os.walk(tmp_path / 'out' / 'tfx' / 'StatisticsGen') if 'Split-train' in dirs]
  stats = tfdv.load_stats_binary(os.path.join(uri, 'FeatureStats.pb')).datasets[0]
  train = data.info['num_ratings']['train']
  # TFDV keeps each batch of examples with probability 0.3: far fewer than all, far more than
  # none (80,000 training ratings come in dozens of batches).
  assert 0.1 * train < stats.num_examples < 0.6 * train
  rating = next(f for f in stats.features if f.path.step == ['rating'])
  assert 3.3 < rating.num_stats.mean < 3.8  # ML-100K's mean rating is 3.53


def test_small_data_is_described_whole(tmp_path, ml100k_dir):
  *_, node = _statistics_pipeline(tmp_path, ml100k_dir,
                                  configs.DEFAULT_STATISTICS_SAMPLE_RATINGS)
  assert not node.exec_properties.get('stats_options_json')
