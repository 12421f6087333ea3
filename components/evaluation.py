"""The TFMA evaluation of each model: metrics, and the thresholds that decide blessing.

A model is blessed (and pushed) only if its RMSE on the eval split is at most an absolute bound
and, when a previously blessed model of the same name exists, not worse than that baseline by
more than an allowed margin (LOWER_IS_BETTER).
"""

import tensorflow_model_analysis as tfma

from components import features
from components import signatures

RMSE, MAE, MSE, EXAMPLE_COUNT = ('root_mean_squared_error', 'mean_absolute_error',
                                 'mean_squared_error', 'example_count')


def eval_config(rmse_upper_bound: float, max_rmse_increase: float) -> tfma.EvalConfig:
  rmse_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(upper_bound={'value': rmse_upper_bound}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.LOWER_IS_BETTER,
          absolute={'value': max_rmse_increase}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(signature_name='serving_default', label_key=features.LABEL,
                                  prediction_key=signatures.RATING)],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExampleCount'),
          tfma.MetricConfig(class_name='MeanSquaredError'),
          tfma.MetricConfig(class_name='MeanAbsoluteError'),
          tfma.MetricConfig(class_name='RootMeanSquaredError', threshold=rmse_threshold),
      ])])
