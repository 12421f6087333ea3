"""TFX's StatisticsGen, whose examples are read and decoded a batch at a time in C++.

Stock StatisticsGen reads a split through its TFXIO's Beam source: one Python element per
example, then batches to decode. TFDV's `sample_rate` samples after that, so reading was most
of StatisticsGen's time on big data (docs/performance.md). This executor gives StatisticsGen
the batch-reading source of components/tfx/batch_read_tfxio.py. Everything else is TFX's
executor, TFDV's statistics and sampling included.

TFX's executor looks up the split's TFXIO inside `Do`, so the lookup is replaced for the
duration of `Do` only (a test checks the statistics against stock StatisticsGen's).
"""

from typing import Any, Dict, List
from unittest import mock

from tfx.components import StatisticsGen as StockStatisticsGen
from tfx.components.statistics_gen import executor as statistics_executor
from tfx.components.util import tfxio_utils
from tfx.dsl.components.base import executor_spec

from components.tfx import batch_read_tfxio

_stock_get_split_tfxio = tfxio_utils.get_split_tfxio


def _batch_read_tfxio(*args, **kwargs):
  return batch_read_tfxio.batch_read(_stock_get_split_tfxio(*args, **kwargs))


class Executor(statistics_executor.Executor):

  def Do(self, input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]],
         exec_properties: Dict[str, Any]) -> None:
    with mock.patch.object(statistics_executor.tfxio_utils, 'get_split_tfxio',
                           _batch_read_tfxio):
      super().Do(input_dict, output_dict, exec_properties)


class StatisticsGen(StockStatisticsGen):
  """The stock StatisticsGen component with this module's executor."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
