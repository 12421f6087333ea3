"""Pipeline settings in one place, shared by the local and the Kubeflow runner.

Model hyperparameters and blessing thresholds live here, not in the model code, so a run's
settings are visible (and recorded in the Trainer's and Evaluator's ML Metadata properties).
"""

import dataclasses
import os
from typing import Dict, List, Optional

from components.models import hyperparameters
from components.models import model_names as names

PIPELINE_NAME = 'movielens-recommender'
# The installed functions Transform and the Trainers call (see pipeline.code_fingerprint).
PREPROCESSING_FN = 'components.transform.preprocessing.preprocessing_fn'
RUN_FN = 'components.models.trainer.run_fn'
MODEL_NAMES = names.MODEL_NAMES
# TFDV's cost per rating is the same at any size (34 s per million on 2 cores): above 2M
# ratings a sample describes the data as well (docs/performance.md).
DEFAULT_STATISTICS_SAMPLE_RATINGS = 2_000_000
# From 1M ratings a local run's big steps run in processes of their own (PipelineSettings).
DEFAULT_OWN_PROCESSES_FROM_RATINGS = 1_000_000


def default_hparams() -> Dict[str, hyperparameters.Training]:
  """Per-model hyperparameters, chosen on validation data carved from training data
  (`python -m bench.tune`, never a test fold). docs/tuning.md has the evidence for each value
  and the variants tried; components/models/hyperparameters.py says what each one does, and
  `--set MODEL.NAME=VALUE` overrides any of them for a run.
  """
  return {
      names.CONTENT_BASED: hyperparameters.ContentBased(
          embedding_dim=32, l2=1e-5, learning_rate=0.003, learning_rate_decay='cosine',
          learning_rate_steps=0, batch_size=512, epochs=8, warm_start_share=0.25, seed=42,
          retrieval_weight=1.0,
          user_chunk=32, user_chunk_from=2_000_000, l2_examples=80_000,
          example_budget=8_000_000, min_epoch_share=0.25,
          profile_shrinkage=5.0, training_profile_cap=0, exact_ranking_movies=4096,
          movie_id_dropout=0.1, min_title_token_movies=20),
      names.COLLABORATIVE_FILTERING: hyperparameters.CollaborativeFiltering(
          embedding_dim=64, l2=2e-4, learning_rate=0.03, learning_rate_decay='cosine',
          learning_rate_steps=400, batch_size=8192, epochs=9, warm_start_share=0.25,
          seed=42, retrieval_weight=0.5,
          user_chunk=0, user_chunk_from=0, l2_examples=80_000, example_budget=16_000_000,
          min_epoch_share=1.0,
          retrieval_dim=32, retrieval_l2=3e-5, ranking_negatives=2048,
          training_history_cap=1024, new_user_prior=1.0, new_user_bias_prior=3.0),
  }


@dataclasses.dataclass
class PipelineSettings:
  """Everything `create_pipeline` needs besides the prepared data."""
  output_dir: str = os.path.join('runs', 'local')
  pipeline_name: str = PIPELINE_NAME
  hparams: Dict[str, hyperparameters.Training] = dataclasses.field(
      default_factory=default_hparams)
  # Blessing: RMSE on the eval split must be <= rmse_upper_bound, and at most
  # max_rmse_increase above the latest blessed model of the same name.
  rmse_upper_bound: float = 1.05
  max_rmse_increase: float = 0.01
  # ... and its lists (components/evaluation/ranking_metrics.py): NDCG@10 at least most-popular's on the
  # same eval users (when ranking_must_beat_popularity), and at most max_ndcg_decrease below
  # the latest blessed model's.
  ranking_must_beat_popularity: bool = True
  max_ndcg_decrease: float = 0.01
  beam_pipeline_args: List[str] = dataclasses.field(default_factory=list)
  enable_cache: bool = True
  # StatisticsGen describes a random sample of about this many ratings when the data has more
  # (TFDV's sample_rate); 0 describes all. The bad-row checks are ingestion's and see every
  # row; the sample is what ExampleValidator compares with the curated schema.
  statistics_sample_ratings: int = DEFAULT_STATISTICS_SAMPLE_RATINGS
  # Local runs of at least this many ratings run the executors of the big steps (ExampleGen,
  # StatisticsGen, Transform, the Trainers and the Evaluators) each in a Python process of its
  # own, which gives their memory back when they end (components/tfx/executor_process.py;
  # starting one costs seconds, which small data would notice). 0: never.
  own_processes_from_ratings: int = DEFAULT_OWN_PROCESSES_FROM_RATINGS
  # Where the pipeline's artifacts and the pushed models go when not under output_dir (a
  # cluster's gs://, s3:// or shared path; kubeflow_runner.py).
  pipeline_root_dir: Optional[str] = None
  serving_base_dir: Optional[str] = None
  # True when compiled for Kubeflow Pipelines (kubeflow_runner.py): the Evaluator's baseline
  # is TFX's LatestBlessedModelStrategy, which KFP v2 compiles into a metadata query (it
  # compiles no custom strategy); locally it is the latest blessed model other than the
  # candidate (components/tfx/baseline_resolver.py), which matters on cached re-runs.
  for_kubeflow: bool = False
  # True: each Trainer starts from the latest blessed model of its name (TFX's base_model)
  # and trains for warm_start_share of a fit, where that model's training ratings are all
  # among the run's (components/models/warm_start.py): for a schedule, whose window grows by a
  # span a run.
  warm_start: bool = False

  @property
  def pipeline_root(self) -> str:
    return self.pipeline_root_dir or os.path.join(self.output_dir, 'tfx')

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_dir, 'metadata.sqlite')

  @property
  def serving_dir(self) -> str:
    return self.serving_base_dir or os.path.join(self.output_dir, 'serving')

  def statistics_sample_rate(self, num_ratings: int) -> float:
    """TFDV's sample_rate for data of `num_ratings` ratings (0: unknown, all): 1.0 unless
    there are more than `statistics_sample_ratings`."""
    cap = self.statistics_sample_ratings
    return min(1.0, cap / num_ratings) if cap and num_ratings > cap else 1.0

  def executors_in_own_processes(self, num_ratings: int) -> bool:
    """Whether a local run over `num_ratings` ratings (0: unknown) runs the big steps'
    executors in processes of their own."""
    threshold = self.own_processes_from_ratings
    return bool(threshold) and num_ratings >= threshold

  def set_epochs(self, epochs: Optional[int]) -> None:
    if epochs is not None:
      if epochs < 1:
        raise ValueError(f'--epochs must be at least 1, got {epochs}')
      self.hparams = {name: hparams.replace(epochs=epochs)
                      for name, hparams in self.hparams.items()}
