"""Pipeline settings in one place, shared by the local and the Kubeflow runner.

Model hyperparameters and blessing thresholds live here, not in the model code, so a run's
settings are visible (and recorded in the Trainer's and Evaluator's ML Metadata properties).
"""

import dataclasses
import os
from typing import Dict, List, Optional

from components import model_names as names

PIPELINE_NAME = 'movielens-recommender'
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENTS_DIR = os.path.join(PROJECT_DIR, 'components')
PREPROCESSING_MODULE = os.path.join(COMPONENTS_DIR, 'preprocessing.py')
TRAINER_MODULE = os.path.join(COMPONENTS_DIR, 'trainer.py')
MODEL_NAMES = names.MODEL_NAMES


def default_hparams() -> Dict[str, Dict]:
  """Per-model hyperparameters.

  The epoch counts are where validation RMSE was lowest in `python -m bench.tune --epochs 12`
  (10% of the ML-100K random-split training data held out; never the eval split):
  collaborative_filtering 0.9098 at epoch 5, content_based 0.9291 at epoch 6. The other values
  are first choices, not yet tuned.
  """
  return {
      names.CONTENT_BASED: dict(embedding_dim=32, l2=1e-5, learning_rate=0.003,
                                batch_size=512, epochs=6, seed=42, profile_shrinkage=5.0),
      names.COLLABORATIVE_FILTERING: dict(embedding_dim=64, l2=2e-4, learning_rate=0.003,
                                          batch_size=512, epochs=9, seed=42, retrieval_dim=32,
                                          retrieval_l2=3e-5, retrieval_weight=0.5),
  }


@dataclasses.dataclass
class PipelineSettings:
  """Everything `create_pipeline` needs besides the prepared data."""
  output_dir: str = os.path.join('runs', 'local')
  pipeline_name: str = PIPELINE_NAME
  hparams: Dict[str, Dict] = dataclasses.field(default_factory=default_hparams)
  # Blessing: RMSE on the eval split must be <= rmse_upper_bound, and at most
  # max_rmse_increase above the latest blessed model of the same name.
  rmse_upper_bound: float = 1.05
  max_rmse_increase: float = 0.01
  beam_pipeline_args: List[str] = dataclasses.field(default_factory=list)
  enable_cache: bool = True

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_dir, 'tfx')

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_dir, 'metadata.sqlite')

  @property
  def serving_dir(self) -> str:
    return os.path.join(self.output_dir, 'serving')

  def set_epochs(self, epochs: Optional[int]) -> None:
    if epochs is not None:
      if epochs < 1:
        raise ValueError(f'--epochs must be at least 1, got {epochs}')
      for hparams in self.hparams.values():
        hparams['epochs'] = epochs
