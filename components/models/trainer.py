"""The Trainer's `run_fn`, shared by both models; `custom_config['model_name']` picks one.

Training is deterministic for a given `seed`: weights, shuffling and TF ops are all seeded.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import json
import os
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.models import batches
from components.models import collaborative_filtering
from components.models import content_based
from components.models import fast_tracing
from components.models import hyperparameters
from components.data import features as f
from components.models import model_io
from components.models import warm_start
from components.export import signatures


def l2_scale(hparams: hyperparameters.Training, num_examples: int) -> float:
  """The factor on the configured L2 weights for `num_examples` training examples.

  Keras adds an embedding table's L2 penalty for the whole table at every step, so over an
  epoch a row is pulled to zero once per step (num_examples / batch steps) while its data term
  grows only with its own ratings: with 10x the data at the same batch size, the penalty is 10x
  stronger relative to the data. The weights are tuned at `l2_examples` training examples; for
  more, they shrink in proportion (the penalty of a fixed prior in the summed loss, divided by
  the number of examples), never grow. On the synthetic 1M, collaborative_filtering's validation
  RMSE went from 1.0041 to 0.7783 with it (docs/tuning.md)."""
  reference = hparams.l2_examples
  return min(1.0, reference / num_examples) if reference and num_examples else 1.0


def training_steps(hparams: hyperparameters.Training, num_examples: int,
                   warm_start: bool = False) -> Tuple[int, int]:
  """(epochs, steps per epoch): `epochs` whole passes, or fewer where they would show the model
  more than `example_budget` examples. An epoch of big data is many more steps than one of the
  data the epochs were tuned on (on the synthetic 10M one epoch of 8M examples shows either
  model more examples than all epochs do on the synthetic 1M; docs/tuning.md).

  Where even one epoch is over the budget, a model may stop part-way through it, down to
  `min_epoch_share` of an epoch: content_based, whose users are their rating profiles and
  whose weights are shared by every rating, learns from a random part of big data;
  collaborative_filtering keeps 1.0, for its user embeddings learn only from their own ratings.
  The part is `steps` batches of the epoch's order (seeded, like a whole epoch).

  `warm_start`: the fit starts from the served model and shows `warm_start_share` of what a
  fit from scratch would: as many whole epochs, rounded, or a part of one (no less than
  `min_epoch_share` of it)."""
  epochs, budget = hparams.epochs, hparams.example_budget
  steps = -(-num_examples // hparams.batch_size)
  if not budget or not num_examples or budget >= num_examples:
    whole = budget // num_examples if budget and num_examples else epochs
    epochs = max(1, min(epochs, whole))
  else:
    shown = max(budget, hparams.min_epoch_share * num_examples)
    epochs, steps = 1, min(steps, max(1, -(-int(shown) // hparams.batch_size)))
  if not warm_start:
    return epochs, steps
  warm_steps = epochs * steps * hparams.warm_start_share
  if warm_steps >= steps:
    return max(1, int(round(warm_steps / steps))), steps
  least = hparams.min_epoch_share * num_examples / hparams.batch_size
  return 1, min(steps, max(1, int(np.ceil(max(warm_steps, least)))))


def user_chunk(hparams: hyperparameters.Training, num_examples: int) -> int:
  """Examples per user chunk of a batch (components/models/batches.py), 0 for random batches: chunks
  make a step's cost stop growing with the data but train less per epoch, so they apply from
  `user_chunk_from` training examples on."""
  return hparams.user_chunk if num_examples >= hparams.user_chunk_from else 0


def learning_rate(hparams: hyperparameters.Training, steps: int):
  """Adam's learning rate over a fit of `steps` steps: `learning_rate`, constant, or with
  `learning_rate_decay` 'cosine' decaying to 0 over the fit (Loshchilov & Hutter 2017).

  With `learning_rate_steps` = S > 0, a fit of more than S steps starts from learning_rate x
  sqrt(S / steps): the 1/sqrt(horizon) step size of stochastic gradient bounds, so that the
  noise the rate lets in does not grow with the number of steps. Measured for
  collaborative_filtering (docs/tuning.md): with the cosine decay, ML-100K (81 steps)
  wanted 0.03 and the synthetic 10M (1,758 steps) 0.015 or less, where 0.03 diverged."""
  rate, reference, steps = hparams.learning_rate, hparams.learning_rate_steps, max(steps, 1)
  if reference and steps > reference:
    rate *= float(np.sqrt(reference / steps))
  if hparams.learning_rate_decay == 'cosine':
    return tf.keras.optimizers.schedules.CosineDecay(rate, steps)
  return rate  # 'constant' (hyperparameters.DECAYS)


def build_model(tf_transform_output: tft.TFTransformOutput, hparams: hyperparameters.Training,
                train: model_io.Examples) -> tf.keras.Model:
  """The model `hparams` are for (their class says which), sized by Transform's vocabularies."""
  has_demographics = f.AGE_BUCKET in tf_transform_output.transformed_feature_spec()
  scale = l2_scale(hparams, len(train))
  common = dict(embedding_dim=hparams.embedding_dim, l2=hparams.l2 * scale,
                global_mean=float(train.labels.mean()), seed=hparams.seed,
                retrieval_weight=hparams.retrieval_weight)
  size = lambda vocab: model_io.vocabulary_size(tf_transform_output, vocab)
  if isinstance(hparams, hyperparameters.CollaborativeFiltering):
    num_movies = size(f.MOVIE_VOCAB)
    # The exact catalogue softmax while the catalogue is no bigger than the sample would be
    # (on ML-100K sampling cost validation accuracy: see docs/tuning.md).
    negatives = hparams.ranking_negatives
    return collaborative_filtering.CollaborativeFilteringModel(
        num_users=size(f.USER_VOCAB), num_movies=num_movies,
        history=(train.features[f.USER_INDEX], train.features[f.MOVIE_INDEX]),
        retrieval_dim=hparams.retrieval_dim, retrieval_l2=hparams.retrieval_l2 * scale,
        ranking_negatives=negatives if negatives < num_movies else 0,
        training_history_cap=hparams.training_history_cap or None,
        new_user_prior=hparams.new_user_prior,
        new_user_bias_prior=hparams.new_user_bias_prior,
        # Scoring every user each step costs no more than a batch's own users would.
        score_all_users=size(f.USER_VOCAB) <= hparams.batch_size, **common)
  if isinstance(hparams, hyperparameters.ContentBased):
    padded = lambda vocab: model_io.padded_vocabulary_size(tf_transform_output, vocab)
    vocab_sizes = {f.MOVIE_INDEX: size(f.MOVIE_VOCAB), f.USER_INDEX: size(f.USER_VOCAB),
                   f.GENRE_IDS: padded(f.GENRE_VOCAB), f.TITLE_TOKEN_IDS: padded(f.TITLE_VOCAB)}
    if has_demographics:
      vocab_sizes.update({f.GENDER_ID: size(f.GENDER_VOCAB),
                          f.OCCUPATION_ID: size(f.OCCUPATION_VOCAB),
                          f.ZIP_PREFIX_ID: size(f.ZIP_VOCAB)})
    content = model_io.movie_content(
        train, content_based.ContentBasedModel.content_feature_names, size(f.MOVIE_VOCAB))
    return content_based.ContentBasedModel(
        vocab_sizes, has_demographics,
        history=(train.features[f.USER_INDEX], train.features[f.MOVIE_INDEX], train.labels),
        movie_content=content, profile_shrinkage=hparams.profile_shrinkage,
        training_profile_cap=hparams.training_profile_cap or None,
        exact_ranking_movies=hparams.exact_ranking_movies,
        movie_id_dropout=hparams.movie_id_dropout,
        min_title_token_movies=hparams.min_title_token_movies, **common)
  raise TypeError(f'no model takes {type(hparams).__name__}; expected one of '
                  f'{[cls.__name__ for cls in hyperparameters.BY_MODEL.values()]}')


def columns_read(hparams: hyperparameters.Training, transformed: Sequence[str]
                 ) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
  """(the `transformed` features training and export read per example, those read as one row
  per movie: model_io.load_examples). collaborative_filtering reads the two indices only,
  content_based its movies' content as a table: at 20M training ratings the 21 content values
  per example would take 3.4 GB, as the other columns would for collaborative_filtering."""
  if isinstance(hparams, hyperparameters.CollaborativeFiltering):
    return (collaborative_filtering.CollaborativeFilteringModel.user_feature_names
            + collaborative_filtering.CollaborativeFilteringModel.movie_feature_names), ()
  per_movie = content_based.ContentBasedModel.content_feature_names
  return tuple(name for name in transformed
               if name not in per_movie and name != f.LABEL), per_movie


def fit_model(tf_transform_output: tft.TFTransformOutput, hparams: hyperparameters.Training,
              train: model_io.Examples, callbacks=None, base_model: Optional[str] = None,
              warm_start_report: Optional[Dict] = None) -> tf.keras.Model:
  """Builds and trains one model on in-memory transformed examples (seeded: repeatable).

  `callbacks` (Keras callbacks) let the tuning script watch validation error per epoch.
  `base_model`: a SavedModel to start from (components/models/warm_start.py), for
  `warm_start_share` of the usual fit (training_steps); where it does not fit, training
  starts from scratch, for the usual fit.
  `warm_start_report` (a dict) receives what the warm start did, or why there was none.
  """
  fast_tracing.skip_tf_keras()
  tf.keras.utils.set_random_seed(hparams.seed)
  tf.config.experimental.enable_op_determinism()
  model = build_model(tf_transform_output, hparams, train)
  # Only the features the model reads (of those read per example: content_based looks up
  # content it was given as a table, `with_content`): Keras copies every input into a tensor.
  inputs = {name: train.features[name]
            for name in model.user_feature_names + model.movie_feature_names
            if name in train.features}
  inputs.update(model.training_inputs(len(train)))
  report = {}
  if base_model:
    report = _warm_start(model, tf_transform_output, train, inputs, base_model)
    if warm_start_report is not None:
      warm_start_report.update(report)
  batch_size, chunk = hparams.batch_size, user_chunk(hparams, len(train))
  epochs, steps_per_epoch = training_steps(hparams, len(train), warm_start='from' in report)
  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate(hparams,
                                                                 epochs * steps_per_epoch)),
                loss=tf.keras.losses.MeanSquaredError(),
                metrics=[tf.keras.metrics.RootMeanSquaredError(name='rmse')])
  # Chunks of one user's ratings for big data, else Keras' own batches of the arrays, as
  # `fit(inputs, labels, shuffle=True)` makes them (the batches the models were tuned on); both
  # without tf.data's autotuning (components/models/batches.py).
  dataset = (batches.chunked_dataset(inputs, train.labels, batch_size, chunk, hparams.seed)
             if chunk else batches.array_batches(inputs, train.labels, batch_size, epochs))
  history = model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0,
                      callbacks=callbacks)
  model.after_training()
  # Printed, not logged: the local runner keeps it in <output-dir>/logs/.
  print(f'{hparams.model_name}: training RMSE by epoch {[round(v, 4) for v in history.history["rmse"]]}',
        flush=True)
  return model


def _warm_start(model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput,
                train: model_io.Examples, inputs: Dict[str, np.ndarray], base_model: str) -> Dict:
  """Builds `model`'s weights (on one example) and sets them from `base_model`: the
  warm start's report, or {'skipped': why} (the model keeps its initial weights)."""
  model.build_weights({name: values[:1] for name, values in inputs.items()})
  try:
    report = warm_start.warm_start(
        model, base_model, tf_transform_output.vocabulary_by_name,
        (train.features[f.USER_INDEX], train.features[f.MOVIE_INDEX]))
  except warm_start.Unsuitable as reason:
    print(f'warm start from {base_model}: not possible, training from scratch: {reason}',
          flush=True)
    return {'skipped': str(reason), 'base_model': base_model}
  print(f"warm start from {base_model}: {len(report['tables'])} tables moved to this run's "
        f"vocabularies, {len(report['copied'])} weights copied", flush=True)
  return report


TRAINING_STATS = 'training_stats.json'


class EpochSeconds(tf.keras.callbacks.Callback):
  """Wall seconds of each training epoch (the first one includes tracing the training step)."""

  def __init__(self):
    super().__init__()
    self.seconds = []

  def on_epoch_begin(self, epoch, logs=None):
    self._started = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds.append(time.monotonic() - self._started)


def _write_training_stats(model_run_dir: str, stats: dict) -> None:
  """The Trainer's throughput, next to its TensorBoard logs (bench/pipeline.py reads it)."""
  tf.io.gfile.makedirs(model_run_dir)
  with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_STATS), 'w') as f:
    f.write(json.dumps(stats, indent=2))
  steady = stats.get('steady_examples_per_second')
  part = (f" ({stats['examples_per_epoch']} of them: a part of an epoch)"
          if stats['examples_per_epoch'] < stats['examples'] else '')
  print(f"training: {stats['examples']} examples{part} x {stats['epochs']} epochs in "
        f"{stats['fit_seconds']:.1f} s ({stats['examples_per_second']:.0f} examples/s"
        + (f'; {steady:.0f} after the first epoch' if steady else '') +
        f"); reading them {stats['load_seconds']:.1f} s", flush=True)


def run_fn(fn_args) -> None:
  """TFX Trainer entry point."""
  config = fn_args.custom_config
  hparams = hyperparameters.from_config(config['model_name'], config['hparams'])
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  started = time.monotonic()
  per_example, per_movie = columns_read(
      hparams, list(tf_transform_output.transformed_feature_spec()))
  train = model_io.load_examples(fn_args.train_files, tf_transform_output, per_example,
                                 per_movie)
  loaded = time.monotonic()
  epochs = EpochSeconds()
  warm = {}
  model = fit_model(tf_transform_output, hparams, train, callbacks=[epochs],
                    base_model=fn_args.base_model, warm_start_report=warm)
  fit_seconds = time.monotonic() - loaded
  # Examples an epoch shows: all of them, or with a part of an epoch (training_steps) its steps'.
  _, steps = training_steps(hparams, len(train), warm_start='from' in warm)
  per_epoch = min(len(train), steps * hparams.batch_size)
  stats = {'examples': int(len(train.labels)), 'epochs': len(epochs.seconds),
           'examples_per_epoch': per_epoch,
           'user_chunk': user_chunk(hparams, len(train)),
           'load_seconds': loaded - started, 'fit_seconds': fit_seconds,
           # Everything in fit_model: building, tracing, every epoch.
           'examples_per_second': per_epoch * len(epochs.seconds) / max(fit_seconds, 1e-9),
           'epoch_seconds': epochs.seconds}
  if warm:
    stats['warm_start'] = warm
  if len(epochs.seconds) > 1:  # the training step alone, once traced
    stats['steady_examples_per_second'] = (per_epoch * (len(epochs.seconds) - 1)
                                           / max(sum(epochs.seconds[1:]), 1e-9))
  _write_training_stats(fn_args.model_run_dir, stats)
  signatures.export(model, tf_transform_output, fn_args.serving_model_dir,
                    tuple(config['rating_range']),
                    signatures.Catalogue.load(config['catalogue_path']), train)
