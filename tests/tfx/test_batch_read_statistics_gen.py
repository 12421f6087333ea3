"""The project's StatisticsGen (components/tfx/batch_read_statistics_gen.py) describes the data
as the stock TFX StatisticsGen does, on real ML-100K, each run through TFX's LocalDagRunner as
the pipeline runs it; with a sample rate, it describes about that share."""

import os

import pytest
import tensorflow_data_validation as tfdv
from tfx import components as tfx_components

from components.tfx import batch_read_statistics_gen
from pipeline import configs
from pipeline import partial
from pipeline import pipeline as pipeline_def


@pytest.fixture(scope='module')
def ml100k(tmp_path_factory):
  from tests.conftest import ML_100K_DIR  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  return partial.prepared_with_schema(ML_100K_DIR, str(tmp_path_factory.mktemp('data')))


def _statistics(output_dir, data, component, sample_ratings=0):
  """{split: DatasetFeatureStatistics} of `component` over the pipeline's examples."""
  settings = configs.PipelineSettings(output_dir=str(output_dir),
                                      statistics_sample_ratings=sample_ratings)
  example_gen, statistics_gen = pipeline_def.examples_and_statistics(settings, data, component)
  partial.run_components(settings, [example_gen, statistics_gen])
  result = {}
  for root, _, names in os.walk(os.path.join(settings.pipeline_root, 'StatisticsGen')):
    if 'FeatureStats.pb' in names:
      split = os.path.basename(root)[len('Split-'):]
      result[split] = tfdv.load_stats_binary(os.path.join(root, 'FeatureStats.pb')).datasets[0]
  return result


def _summary(dataset):
  """What the report and ExampleValidator read of each feature: counts and values exactly,
  means and deviations apart (sums in another order differ in the last float digits)."""
  exact, floats = {}, {}
  for feature in dataset.features:
    name = feature.path.step[0]
    if feature.HasField('num_stats'):
      stats = feature.num_stats
      exact[name] = (stats.common_stats.num_non_missing, stats.common_stats.num_missing,
                     stats.min, stats.max)
      floats[name] = (stats.mean, stats.std_dev)
    else:
      stats = feature.string_stats
      exact[name] = (stats.common_stats.num_non_missing, stats.common_stats.num_missing,
                     stats.unique, [(v.value, v.frequency) for v in stats.top_values])
  return dataset.num_examples, exact, floats


def test_the_same_statistics_as_stock_statistics_gen(tmp_path, ml100k, batch_source_calls):
  ours = _statistics(tmp_path / 'ours', ml100k, batch_read_statistics_gen.StatisticsGen)
  assert len(batch_source_calls) == 2  # each split through the batch-reading source
  stock = _statistics(tmp_path / 'stock', ml100k, tfx_components.StatisticsGen)
  assert len(batch_source_calls) == 2
  assert set(ours) == set(stock) == {'train', 'eval'}
  for split in ours:
    count, exact, floats = _summary(ours[split])
    stock_count, stock_exact, stock_floats = _summary(stock[split])
    assert count == stock_count and exact == stock_exact, split
    for name, values in stock_floats.items():
      assert floats[name] == pytest.approx(values, rel=1e-9), (split, name)
  assert ours['train'].num_examples == ml100k.info['num_ratings']['train']


def test_a_sample_rate_describes_about_that_share(tmp_path, ml100k):
  ours = _statistics(tmp_path, ml100k, batch_read_statistics_gen.StatisticsGen, 30_000)
  train = ml100k.info['num_ratings']['train']
  # TFDV keeps each batch of 1,000 with probability 0.3: 80 batches, far from none or all.
  assert 0.1 * train < ours['train'].num_examples < 0.6 * train
