"""components/evaluation/rating_metrics.py gives TFMA's own numbers, in one pass per example."""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma

from components.evaluation import rating_metrics
from tensorflow_model_analysis.metrics import metric_types


def _ratings(seed=0, users=30):
  """Ratings with distinct predictions (ties would make NDCG depend on order)."""
  rng = np.random.default_rng(seed)
  rows = []
  for user in range(users):
    for _ in range(rng.integers(1, 15)):
      rating = float(rng.integers(1, 6))
      rows.append({'user_id': f'u{user}', 'group': 'a' if user % 3 else 'b',
                   'rating': rating, 'prediction': rating + rng.normal(0, 1.0)})
  return pd.DataFrame(rows)


def _analyze(data, metrics, query_key, output_path):
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key='rating', prediction_key='prediction')],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=['group'])],
      metrics_specs=[tfma.MetricsSpec(metrics=metrics, query_key=query_key)])
  result = tfma.analyze_raw_data(data, config, output_path=output_path)
  values = {}
  for slice_key, by_output in result.slicing_metrics:
    for sub_key, metrics in by_output[''].items():  # sub_key: '' or 'topK:5'
      for name, metric in metrics.items():
        if 'doubleValue' in metric:
          values[(slice_key, name, sub_key)] = metric['doubleValue']
  return values


def test_errors_and_ndcg_equal_tfma_metrics_overall_and_per_user_slice(tmp_path):
  data = _ratings()
  ours = _analyze(data, [
      tfma.MetricConfig(class_name='RatingErrors', module=rating_metrics.__name__),
      tfma.MetricConfig(class_name='UserNDCG', module=rating_metrics.__name__,
                        config=json.dumps({'user_key': 'user_id', 'top_k_list': [5, 10]}))],
      '', str(tmp_path / 'ours'))
  errors = _analyze(data, [tfma.MetricConfig(class_name=name) for name in (
      'ExampleCount', 'MeanSquaredError', 'RootMeanSquaredError', 'MeanAbsoluteError',
      'MeanLabel', 'MeanPrediction')], '', str(tmp_path / 'errors'))
  ndcg = _analyze(data, [tfma.MetricConfig(class_name='NDCG', config=json.dumps(
      {'gain_key': 'rating', 'top_k_list': [5, 10]}))], 'user_id', str(tmp_path / 'ndcg'))
  assert len(errors) == 3 * 6 and len(ndcg) == 3 * 2  # overall, group a, group b
  for key, value in list(errors.items()) + list(ndcg.items()):
    assert ours[key] == pytest.approx(value, rel=1e-6), key
  overall = data
  assert ours[((), 'root_mean_squared_error', '')] == pytest.approx(
      float(np.sqrt(np.mean((overall.rating - overall.prediction) ** 2))), rel=1e-6)


def test_ndcg_of_a_known_ordering():
  gains = np.array([3.0, 2.0, 3.0, 0.0, 1.0])  # in predicted order
  ideal = np.sort(gains)[::-1]
  dcg = 3 / np.log2(2) + 2 / np.log2(3) + 3 / np.log2(4)
  best = 3 / np.log2(2) + 3 / np.log2(3) + 2 / np.log2(4)
  assert rating_metrics.ndcg_at(gains, ideal, 3) == pytest.approx(dcg / best)
  assert rating_metrics.ndcg_at(ideal, ideal, 10) == pytest.approx(1.0)
  assert rating_metrics.ndcg_at(np.zeros(3), np.zeros(3), 5) == 0.0


def test_each_model_of_a_baseline_comparison_reads_its_own_prediction():
  inputs = metric_types.StandardMetricInputs(
      labels={'candidate': np.array([4.0]), 'baseline': np.array([4.0])},
      predictions={'candidate': np.array([3.5]), 'baseline': np.array([2.0])},
      example_weights={'candidate': np.array([1.0]), 'baseline': np.array([1.0])})
  for model, prediction in (('candidate', 3.5), ('baseline', 2.0)):
    key = metric_types.MetricKey('mean_squared_error', model_name=model)
    assert rating_metrics._label_prediction_weight(inputs, None, key) == (4.0, prediction, 1.0)


def _validation(data, rmse_upper_bound, output_path):
  """TFMA's validation of the pipeline's RMSE threshold (overall slice only) on `data`."""
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key='rating', prediction_key='prediction')],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=['group'])],
      metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(
          class_name='RatingErrors', module=rating_metrics.__name__,
          per_slice_thresholds=[tfma.PerSliceMetricThreshold(
              slicing_specs=[tfma.SlicingSpec()],
              threshold=tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
                  upper_bound={'value': rmse_upper_bound})))])])])
  tfma.analyze_raw_data(data, config, output_path=output_path)
  return tfma.load_validation_result(output_path)


def test_the_blessing_threshold_is_checked_on_the_overall_rmse(tmp_path):
  data = _ratings()
  rmse = float(np.sqrt(np.mean((data.rating - data.prediction) ** 2)))
  assert _validation(data, rmse + 0.01, str(tmp_path / 'pass')).validation_ok
  failed = _validation(data, rmse - 0.01, str(tmp_path / 'fail'))
  assert not failed.validation_ok
  [failure] = [f for s in failed.metric_validations_per_slice for f in s.failures]
  assert failure.metric_key.name == 'root_mean_squared_error'
  assert failure.metric_value.double_value.value == pytest.approx(rmse, rel=1e-6)


def _calibration(data, metric, output_path):
  """{bucket lower bound: (count, total label, total prediction)} of the overall slice."""
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key='rating', prediction_key='prediction')],
      slicing_specs=[tfma.SlicingSpec()], metrics_specs=[tfma.MetricsSpec(metrics=[metric])])
  tfma.analyze_raw_data(data, config, output_path=output_path)
  [plots] = list(tfma.load_plots(output_path))
  [entry] = [e for e in plots.plot_keys_and_values
             if e.value.HasField('calibration_histogram_buckets')]
  return {b.lower_threshold_inclusive: (b.num_weighted_examples.value,
                                        b.total_weighted_label.value,
                                        b.total_weighted_refined_prediction.value)
          for b in entry.value.calibration_histogram_buckets.buckets
          if b.num_weighted_examples.value}


def test_the_calibration_plot_equals_tfma_calibration_plot(tmp_path):
  data = _ratings()
  data['prediction'] = data.prediction.clip(1.0, 5.0)  # as served: 5.0 is in [right, inf)
  config = json.dumps({'num_buckets': 40, 'left': 1.0, 'right': 5.0})
  ours = _calibration(data, tfma.MetricConfig(
      class_name='RatingErrors', module=rating_metrics.__name__, config=config),
      str(tmp_path / 'ours'))
  theirs = _calibration(data, tfma.MetricConfig(class_name='CalibrationPlot', config=config),
                        str(tmp_path / 'theirs'))
  assert len(theirs) > 10 and sorted(ours) == sorted(theirs)
  for low, (count, labels, predictions) in theirs.items():
    assert ours[low][0] == count
    assert ours[low][1:] == pytest.approx((labels, predictions), rel=1e-6)
  assert sum(count for count, _, _ in ours.values()) == len(data)
