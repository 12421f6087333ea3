"""The TFMA evaluation of each model: metrics, slices, and the thresholds that decide blessing.

A model is blessed (and pushed) only if, on the eval split's overall slice:
- its RMSE is at most an absolute bound and, when a previously blessed model of the same name
  exists, not worse than that baseline's by more than an allowed margin (LOWER_IS_BETTER);
- the NDCG@10 of its `recommend` lists (components/evaluation/ranking_metrics.py) is at least
  most-popular's on the same users (`ranking/ndcg@10_over_most_popular` >= 0; a setting), and
  not lower than the baseline's by more than an allowed margin (HIGHER_IS_BETTER).

Besides the error metrics, the mean label and mean prediction (calibration in the large), a
calibration plot (ratings grouped by predicted value: mean rating against mean prediction, and
the histogram of predictions), and per user NDCG@5 and NDCG@10 of the user's eval ratings
ordered by predicted rating, with the rating as the gain, averaged over users. Every metric is
computed overall and per slice (components/evaluation/slicing.py); within a slice of ratings (a genre),
NDCG orders each user's ratings in that slice.
"""

import json

import tensorflow_model_analysis as tfma
from google.protobuf import wrappers_pb2

from components.data import features
from components.evaluation import ranking_metrics
from components.evaluation import rating_metrics
from components.export import signatures
from components.evaluation import slicing

RMSE, MAE, MSE, EXAMPLE_COUNT = (rating_metrics.RMSE, rating_metrics.MAE, rating_metrics.MSE,
                                 rating_metrics.EXAMPLE_COUNT)
MEAN_LABEL, MEAN_PREDICTION, NDCG, CALIBRATION_PLOT = (
    rating_metrics.MEAN_LABEL, rating_metrics.MEAN_PREDICTION, rating_metrics.NDCG,
    rating_metrics.CALIBRATION_PLOT)
NDCG_CUTOFFS = (5, 10)
CALIBRATION_BUCKETS = 40  # prediction buckets over the rating scale


def eval_config(rmse_upper_bound: float, max_rmse_increase: float,
                rating_range=(1.0, 5.0), has_demographics: bool = True,
                max_ndcg_decrease: float = 0.01,
                ranking_must_beat_popularity: bool = True) -> tfma.EvalConfig:
  rmse_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(upper_bound={'value': rmse_upper_bound}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.LOWER_IS_BETTER,
          absolute={'value': max_rmse_increase}))
  low, high = (float(v) for v in rating_range)
  overall = [tfma.SlicingSpec()]
  ranking_thresholds = {ranking_metrics.key_name(ranking_metrics.RANKING, 'ndcg@10'):
                        tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
                            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                            absolute={'value': -max_ndcg_decrease}))}
  if ranking_must_beat_popularity:
    ranking_thresholds[ranking_metrics.NDCG_OVER_POPULAR] = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={'value': 0.0}))
  return tfma.EvalConfig(
      # A generic SavedModel, loaded as TF Serving loads it: without a model type TFMA first
      # tries Keras' loader (seconds per load; the export saves no Keras layer traces).
      model_specs=[tfma.ModelSpec(signature_name='serving_default', label_key=features.LABEL,
                                  prediction_key=signatures.RATING,
                                  model_type=tfma.TF_GENERIC)],
      slicing_specs=slicing.slicing_specs(has_demographics),
      metrics_specs=[tfma.MetricsSpec(metrics=[
          # Count, MSE, RMSE, MAE, mean label and prediction (calibration in the large), the
          # calibration plot and per-user NDCG, one pass per example
          # (components/evaluation/rating_metrics.py). The blessing looks at the overall slice's RMSE only
          # (a small slice is noisy).
          tfma.MetricConfig(class_name='RatingErrors', module=rating_metrics.__name__,
                            config=json.dumps({'num_buckets': CALIBRATION_BUCKETS,
                                               'left': low, 'right': high}),
                            per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                                slicing_specs=[tfma.SlicingSpec()], threshold=rmse_threshold)]),
          tfma.MetricConfig(class_name='UserNDCG', module=rating_metrics.__name__,
                            config=json.dumps({'user_key': features.USER_ID,
                                               'top_k_list': list(NDCG_CUTOFFS)})),
          # The lists `recommend` gives each eval user, and most-popular's.
          tfma.MetricConfig(class_name='TopKRanking', module=ranking_metrics.__name__,
                            config=json.dumps({'user_key': features.USER_ID,
                                               'movie_key': features.MOVIE_ID})),
      ], per_slice_thresholds={
          # Thresholds keyed by a metric's name, on the overall slice, so that they apply to
          # keys of TopKRanking other than the one it is named after.
          name: tfma.PerSliceMetricThresholds(thresholds=[tfma.PerSliceMetricThreshold(
              slicing_specs=overall, threshold=threshold)])
          for name, threshold in ranking_thresholds.items()})],
      # Not the model's compiled Keras metrics: the ones above are the evaluation.
      options=tfma.Options(include_default_metrics=wrappers_pb2.BoolValue(value=False)))
