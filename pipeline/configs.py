"""Pipeline settings in one place, shared by the local and the Kubeflow runner.

Model hyperparameters and blessing thresholds live here, not in the model code, so a run's
settings are visible (and recorded in the Trainer's and Evaluator's ML Metadata properties).
"""

import dataclasses
import os
from typing import Dict, List, Optional

from components import model_names as names

PIPELINE_NAME = 'movielens-recommender'
# The installed functions Transform and the Trainers call (see pipeline.code_fingerprint).
PREPROCESSING_FN = 'components.preprocessing.preprocessing_fn'
RUN_FN = 'components.trainer.run_fn'
MODEL_NAMES = names.MODEL_NAMES


def default_hparams() -> Dict[str, Dict]:
  """Per-model hyperparameters, chosen on validation data carved from training data.

  `python -m bench.tune --epochs 12` (random 80/20 split, 10% of its training part held out;
  and, for the ranking head, 25% of each user's ratings of the per-user split's training part):
  - content_based with its ranking head (`--models content_based --checks rating ranking`;
    validation RMSE, then validation NDCG@10 of its `recommend` ranking, by epoch): at a
    constant rate 0.003 for 12 epochs, RMSE 0.9271, 0.9172, 0.9072, 0.9003, 0.9021, 0.9035,
    0.8976, 0.9086 ... 0.9240 and NDCG@10 0.1812, 0.2077, 0.2304, 0.2395 ... 0.2460 (epoch 8)
    ... 0.2389: the rating overfits after epoch 4-7, the ranking plateaus from epoch 6. With
    the cosine decay over 8 epochs (`--epochs 8 --set content_based.learning_rate_decay=cosine`)
    both end at their best: RMSE 0.8992 (best 0.8984), NDCG@10 0.2457 (best 0.2468) -> 8
    epochs, cosine. Ranking weight 0.5 / 2.0 (constant rate, 12 epochs): best RMSE 0.9004 /
    0.8960, best NDCG@10 0.2484 / 0.2451, against 0.8976 / 0.2460 at 1.0 -> 1.0. Movie ID
    dropout 0 against 0.1: best RMSE 0.8989 / 0.8976, NDCG@10 0.2469 / 0.2460: the dropout
    that lets it score new movies costs nothing measurable -> 0.1.
    New movies (`--checks new_movies`: every rating of 10% of the training movies of
    bench.quality's new-movie protocol held out, 151 movies, 9,633 ratings; RMSE against the
    genre baseline's 1.0459, AUC in `recommend`): every title word kept, +25.7% / 0.374 (the
    words of one title stood in for its ID). Words of fewer than N training movies read as
    the unknown word everywhere: N = 2 / 3 / 6 / 20 / 60 / none kept: -1.7% / -1.8% / -1.9% /
    -2.2% / -2.3% / -2.3%, AUC 0.80 / 0.81 / 0.83 / 0.83 / 0.83 / 0.83, but N = 20 cost the
    known movies (8 epochs: RMSE 0.9052 / NDCG@10 0.2374 against 0.9004 / 0.2452). Applied only
    to a movie read without its ID (new, or its ID dropped): N = 3 / 20: -2.1% / -2.5%, AUC
    0.82 / 0.83, and known movies at N = 20 0.8989 / 0.2458 -> 20, there only. With it, ID
    dropout 0.2: -2.1%; a content rating bias (dense layer over the movie features) -1.6% at
    N = 3 against -1.8% without. Before the ranking head:
  - content_based (`--models content_based --epochs 6`, and `--checks cold --epochs 5` for
    users held out of training, 3 carvings of the cold-start protocol's training users, 10
    ratings of each sent as their profile): validation RMSE by epoch 0.9315, 0.9205, 0.9087,
    0.9071 (best), 0.9089, 0.9113; cold users vs item mean -6.93%, -7.80%, -8.25% (best),
    -8.22%, -7.33% -> 4 epochs (best warm, within 0.03% of the best cold). Profile shrinkage
    5 against 2 and 12 (`--set content_based.profile_shrinkage=...`, before the chosen-movies
    half of the profile): best cold -7.22%, -7.05%, -6.88% -> 5.
  - collaborative_filtering: at batch 512, learning rate 0.003: validation RMSE best 0.8952 at
    epoch 10 (0.8968 at 9), validation NDCG@10 best 0.2651 at epoch 8 (0.2643 at 9) -> 9 epochs.
    Batch 8192 trains many times faster (the softmax normaliser is computed once per distinct
    user of a batch) and, with learning rate 0.015 (`--epochs 25 --set
    collaborative_filtering.batch_size=8192 --set collaborative_filtering.learning_rate=0.015`),
    matches it: RMSE best 0.8966 at epoch 9, NDCG@10 best 0.2636 at epoch 9 -> 9 epochs.
    Batch 16384 fell behind (learning rate 0.03: RMSE 0.8987, NDCG@10 0.2619; with L2 4e-4:
    0.9070, 0.2575). Again after the whole-catalogue step (README, round eight), which makes
    a step cost nearly the same at any batch size: learning rate 0.015, 0.02, 0.03, 0.04, 0.05
    gave RMSE 0.9006, 0.9004, 0.8987, 0.9016, 0.9007 and NDCG@10 0.2623, 0.2612, 0.2619,
    0.2558, 0.2533; L2 1e-4 and 3e-4 at 0.03: 0.9124 / 0.2490, 0.9003 / 0.2607; batch 32768
    at 0.03 and 0.05: 0.9053 / 0.2595, 0.9039 / 0.2584. Over model seeds 42, 1, 2, 3, batch
    8192 averaged RMSE 0.8990 and NDCG@10 0.2625, batch 16384 (0.03) 0.9004 and 0.2573 (best
    epochs). `learning_rate_decay=cosine` (the rate decays to 0 over the fit), after the last
    epoch, averaged over the same four seeds (`--epochs E --set
    collaborative_filtering.learning_rate_decay=cosine`, batch and rate set as named), against
    RMSE 0.8992 and NDCG@10 0.2613 for the default after its 9th epoch:
      batch 8192, 9 epochs, rate 0.015 / 0.02 / 0.03: 0.9068 / 0.2491, 0.9001 / 0.2561,
      0.8970 / 0.2615;
      batch 16384, rate 0.03, 12 / 14 / 16 / 18 epochs: 0.8990 / 0.2579, 0.8978 / 0.2597,
      0.8986 / 0.2596, 0.8998 / 0.2590; 14 epochs at rate 0.025 and 0.04: 0.8987 / 0.2587,
      0.8984 / 0.2579; 14 epochs at 0.03 with retrieval_weight 0.7: 0.8986 / 0.2580.
    So the batch stays 8192: at 16384 the best (14 epochs, 0.03) trails batch 8192 with the
    cosine decay on both tasks. That decay at 8192 and rate 0.03 is better on RMSE and equal on
    NDCG@10 (on the synthetic 1M after 9 epochs: 0.7810 / 0.1491 against 0.7819 / 0.1470),
    but at 10M (two epochs, 10% of the training ratings held out) its validation RMSE was
    1.0293 against 0.7909, while the decay at rate 0.015 gave 0.7499 there (and 0.7803 /
    0.1480 on the 1M; README, ninth round).
    So the rate shrinks with the fit's length: with `learning_rate_steps` S, a fit of T > S
    steps starts from learning_rate x sqrt(S / T) (components/trainer.py learning_rate). At
    10M (1,758 steps in the same script), with the cosine decay, rates 0.01 / 0.015 / 0.02 /
    0.03 gave validation RMSE 0.7571 / 0.7499 / 0.8226 / 1.0293 after two epochs: a cliff above
    0.015. S = 400 puts that fit at 0.0143 (0.7492) and the pipeline's 10M (1,954 steps) at
    0.0136, below the cliff, the synthetic 1M's 882 pipeline steps at 0.020 (its 9-epoch runs
    at 0.015 / 0.022 / 0.03 ended at 0.7803 / 0.7863 / 0.7810, overfitting after epoch 4-6 at
    every rate) and leaves ML-100K (90 steps) at 0.03: cosine from 0.03 is the default since
    round ten (README). Around it on ML-100K (four seeds, last epoch): rate 0.04 for 9
    epochs 0.8979 / 0.2629, rate 0.03 for 12 epochs 0.8994 / 0.2613.
    A sampled ranking softmax (`--set collaborative_filtering.ranking_negatives=N`, N shared
    negatives drawn by popularity with the logQ correction) trains faster but fell behind the
    exact one on ML-100K: N=256 RMSE 0.9051, NDCG@10 0.2368; N=1024 RMSE 0.9017 (drawing
    uniformly, N=256: 0.9048, 0.2226). So the softmax stays exact up to 2048 movies (ML-100K
    has 1,682) and samples 2048 negatives for bigger catalogues, where the exact one costs
    [users in a batch x movies] per step (checked there on synthetic data only: bench.pipeline).
  - content_based at bigger batches fell behind batch 512's 0.9071 (batch 2048, learning rate
    0.006: best 0.9099; 4096, 0.01: 0.9128), so it stays at 512.
  - History caps (`training_profile_cap`, `training_history_cap`: in training, a user's
    profile or SVD++ sum drawn from at most that many of their ratings; they apply only where
    a user has more, never on ML-100K): on the synthetic 1M (`bench.tune --data-dir` on
    `python -m bench.synth --ratings 1000000`), content_based capped at 1024 reached validation
    RMSE 0.6819 after 4 epochs against 0.6768 uncapped, so its cap is off (0) by default;
    collaborative_filtering capped at 1024 1.0047 after 9 epochs against 1.0045 (best 1.0041
    both), so its cap is on. bench/results/pipeline-10m-partial.md: what they save at 10M.
    (Those runs predate `l2_examples`, below.)
  - Big data. Where the training set is bigger than the 80,000 ratings of ML-100K, the L2
    weights shrink by 80,000 / (training examples) (`l2_examples`; components/trainer.py
    l2_scale says why). On the synthetic 1M (720,000 carved training ratings):
    collaborative_filtering's validation RMSE, best of 9 epochs, 1.0041 -> 0.7783 (training
    RMSE 1.0017 -> 0.6895: it underfitted); content_based's, in 16-rating chunks (below),
    0.6693 -> 0.6612 after 6 epochs.
  - User chunks (`user_chunk`, components/batches.py: a batch made of chunks of one user's
    ratings, so a step computes a few users' profiles instead of one per example). They cost
    accuracy per epoch: ML-100K, chunks of 32: content_based best 0.9088 vs 0.9066 (best
    epoch 6 vs 4), collaborative_filtering 0.9006 vs 0.8966 and NDCG@10 0.2591 vs 0.2636;
    synthetic 1M: content_based after 4 epochs 0.7047 (32) and 0.6828 (16) vs 0.6768,
    collaborative_filtering best 0.7871 vs 0.7783. But at 10M ratings a content_based step of
    512 random examples takes 458 ms, an epoch 2 hours (`python -m bench.trainer_steps` on the
    10M run's Transform output); in chunks of 16, 141 ms; of 32, 54 ms; of 64, 42 ms. So
    content_based trains in chunks of 32 from 2,000,000 training examples on
    (`user_chunk_from`) and in random batches below; collaborative_filtering, whose capped
    step at 10M costs less (an epoch about 6 min), always in random batches.
  - `example_budget`: at most that many examples shown in training, in whole epochs, at least
    one. It leaves ML-100K and the synthetic 1M at their epochs (4 x 800,000 and 9 x 800,000
    are within it). content_based's, 8,000,000, trains one epoch on the synthetic 10M's
    8,000,000 (not tuned there: an epoch takes about 14 minutes). collaborative_filtering's,
    16,000,000, trains two: on the 10M run's Transform output, 10% of the training ratings
    held out (a seeded random carve; scratch script over `components.trainer.fit_model`),
    validation RMSE 0.9669 after one epoch and 0.7909 after two (a third was not measured).
  The other values (dimensions, L2, learning rates, ranking weight 0.5 and its factors) come
  from exploratory runs of a prototype on the same validation splits (see README, "The
  models"); `bench.tune --set MODEL.NAME=VALUE` re-runs any of them.
  """
  return {
      names.CONTENT_BASED: dict(embedding_dim=32, l2=1e-5, learning_rate=0.003,
                                batch_size=512, epochs=8, seed=42, profile_shrinkage=5.0,
                                training_profile_cap=0, learning_rate_decay='cosine',
                                retrieval_weight=1.0,
                                exact_ranking_movies=4096, movie_id_dropout=0.1,
                                min_title_token_movies=20,
                                user_chunk=32,
                                user_chunk_from=2_000_000, l2_examples=80_000,
                                example_budget=8_000_000),
      names.COLLABORATIVE_FILTERING: dict(embedding_dim=64, l2=2e-4, learning_rate=0.03,
                                          batch_size=8192, epochs=9, seed=42,
                                          learning_rate_decay='cosine', learning_rate_steps=400,
                                          retrieval_dim=32,
                                          retrieval_l2=3e-5, retrieval_weight=0.5,
                                          ranking_negatives=2048, training_history_cap=1024,
                                          user_chunk=0, user_chunk_from=0,
                                          l2_examples=80_000, example_budget=16_000_000),
  }


# Hyperparameters that take one of a few words (components/trainer.py reads them).
HPARAM_CHOICES = {'learning_rate_decay': ('constant', 'cosine')}


def override_hparams(hparams: Dict[str, Dict], settings: List[str]) -> Dict[str, Dict]:
  """Applies `MODEL.NAME=VALUE` overrides (value converted to the setting's type) in place."""
  for setting in settings:
    key, _, value = setting.partition('=')
    model, _, name = key.partition('.')
    if model not in hparams or name not in hparams[model] or not value:
      raise ValueError(f'{setting!r}: expected MODEL.NAME=VALUE with MODEL one of '
                       f'{sorted(hparams)} and NAME one of its hyperparameters')
    try:
      hparams[model][name] = type(hparams[model][name])(value)
    except ValueError:
      raise ValueError(f'{setting!r}: {value!r} is not a valid '
                       f'{type(hparams[model][name]).__name__}') from None
    if name in HPARAM_CHOICES and value not in HPARAM_CHOICES[name]:
      raise ValueError(f'{setting!r}: expected one of {list(HPARAM_CHOICES[name])}')
  return hparams


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
  # ... and its lists (components/ranking_metrics.py): NDCG@10 at least most-popular's on the
  # same eval users (when ranking_must_beat_popularity), and at most max_ndcg_decrease below
  # the latest blessed model's.
  ranking_must_beat_popularity: bool = True
  max_ndcg_decrease: float = 0.01
  beam_pipeline_args: List[str] = dataclasses.field(default_factory=list)
  enable_cache: bool = True
  # Where the pipeline's artifacts and the pushed models go when not under output_dir (a
  # cluster's gs://, s3:// or shared path; kubeflow_runner.py).
  pipeline_root_dir: Optional[str] = None
  serving_base_dir: Optional[str] = None
  # True when compiled for Kubeflow Pipelines (kubeflow_runner.py): the Evaluator's baseline
  # is TFX's LatestBlessedModelStrategy, which KFP v2 compiles into a metadata query (it
  # compiles no custom strategy); locally it is the latest blessed model other than the
  # candidate (components/baseline_resolver.py), which matters on cached re-runs.
  for_kubeflow: bool = False

  @property
  def pipeline_root(self) -> str:
    return self.pipeline_root_dir or os.path.join(self.output_dir, 'tfx')

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.output_dir, 'metadata.sqlite')

  @property
  def serving_dir(self) -> str:
    return self.serving_base_dir or os.path.join(self.output_dir, 'serving')

  def set_epochs(self, epochs: Optional[int]) -> None:
    if epochs is not None:
      if epochs < 1:
        raise ValueError(f'--epochs must be at least 1, got {epochs}')
      for hparams in self.hparams.values():
        hparams['epochs'] = epochs
