"""Chooses hyperparameters on validation data carved from the training data, never a test fold.

    python -m bench.tune [--epochs 15] [--models ...] [--checks rating cold ranking new_movies]
                         [--set MODEL.NAME=VALUE ...]

Rating error: takes the seeded random 80/20 split of ML-100K (the pipeline's default), holds out
10% of its *training* part (seed 0) as validation, trains each model with the settings of
pipeline/configs.py (overridden by --set) for up to --epochs epochs and prints the validation
RMSE after each epoch and the best epoch.

Ranking (both models' ranking heads, which `recommend` uses): takes the training part
of the per-user 75/25 split (Microsoft Recommenders' protocol, seed 42), holds out 25% of each
user's training ratings (seed 1) and prints the validation NDCG@10 after each epoch (top 10 of
the movies not rated in the carved training part; relevant = rated in the validation part).

Cold users (users unseen in training, who send their first ratings): takes the training part
of bench.quality's cold-start protocol (the users not held out there), holds out 10% of *its*
users (seed 0, 1, 2), trains each model on the rest and prints, after each epoch, the
validation RMSE on the held-out users' ratings, each user read from 10 of their ratings (same
seed) as a request would send them, and from nothing else (demographics, or the mean user),
relative to the item-mean baseline; and the NDCG@10 of their top 10 from those ratings against
their other movies, beside most-popular's. Cold users are few (85 per carving), so this is
repeated for --cold-seeds carvings and averaged.

New movies (content_based): takes the training part of bench.quality's new-movie protocol (the
movies not held out there), holds out every rating of 10% of *its* movies (seed 7), trains with
the configured epochs and prints the RMSE on them against the genre baseline and their AUC in
`recommend`.

The values in pipeline/configs.py come from runs of this script (docs/tuning.md has the runs).
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import json
import os
import sys
import tempfile
from typing import Dict, List

import numpy as np

from bench import quality
from components.data import features as f
from components.evaluation import ranking_metrics
from components.data import movielens_splits as splits
from components.models.model_names import CONTENT_BASED, MODEL_NAMES

COLD_FRACTION, COLD_GIVEN = 0.1, 10  # as bench.quality's cold-start protocol
CHECKS = ('rating', 'cold', 'ranking', 'new_movies')
NEW_MOVIES_FRACTION, NEW_MOVIES_SEED = 0.1, 7  # the carving; bench.quality's protocol: seed 42


def _carve(data, ratings, strategy, fraction, seed):
  """(fit, validation) parts of `ratings` by a split strategy applied to them alone."""
  mask = splits.eval_mask(data, ratings, strategy, fraction, seed)
  return ratings.take(~mask), ratings.take(mask)


USER_CHUNK = 4096  # validation users scored at a time: [users, movies] scores stay small


def _ndcg_at_10(model, fit_examples, validation_examples) -> float:
  """Mean NDCG@10 of the model's ranking head over the validation users (top 10 of the movies
  each user did not rate in fitting), scored a chunk of users at a time."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  fit_users = fit_examples.features[f.USER_INDEX]
  fit_movies = fit_examples.features[f.MOVIE_INDEX]
  movies, first_movie = np.unique(fit_movies, return_index=True)
  vectors, bias = model.ranking_movies({name: tf.constant(fit_examples.features[name][first_movie])
                                        for name in model.movie_feature_names})
  users = np.unique(validation_examples.features[f.USER_INDEX])
  # Each user's features as stored in training (their first example's; one per user).
  first = np.searchsorted(fit_users, users)
  # Fit ratings of validation users as (row in `users`, column in `movies`), masked below.
  row = np.searchsorted(users, fit_users).clip(max=len(users) - 1)
  seen = users[row] == fit_users
  seen_rows, seen_columns = row[seen], np.searchsorted(movies, fit_movies[seen])
  order = np.argsort(seen_rows, kind='stable')
  seen_rows, seen_columns = seen_rows[order], seen_columns[order]
  recommended = {}
  for start in range(0, len(users), USER_CHUNK):
    stop = min(start + USER_CHUNK, len(users))
    user, offset = model.ranking_user({name: tf.constant(fit_examples.features[name][first[start:stop]])
                                       for name in model.user_feature_names})
    scores = (offset[:, None] + tf.matmul(user, vectors, transpose_b=True) + bias).numpy()
    lo, hi = np.searchsorted(seen_rows, [start, stop])
    scores[seen_rows[lo:hi] - start, seen_columns[lo:hi]] = -np.inf
    top = tf.math.top_k(scores, k=min(10, scores.shape[1])).indices.numpy()
    for i, u in enumerate(users[start:stop].tolist()):
      recommended[u] = [str(m) for m in movies[top[i]]]
  relevant = {}
  for u, m in zip(validation_examples.features[f.USER_INDEX].tolist(),
                  validation_examples.features[f.MOVIE_INDEX].tolist()):
    relevant.setdefault(u, set()).add(str(m))
  return quality.ranking_metrics(recommended, relevant, 10, len(movies))['ndcg@10']


def _cold_metrics(model, fit, shown, shown_users, held, held_users) -> Dict[str, float]:
  """Validation metrics of users unseen in training (transformed Examples in the order of their
  raw user ids `*_users`; `fit` the training Examples): RMSE on their `held` ratings from each
  user's `shown` ratings sent as a request would send them (`profile_inputs`), and from nothing
  else (demographics, or the mean user); NDCG@10 of their ranking from the shown ratings (top 10
  of the fit movies not shown) against their held movies, and of most-popular."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  model.set_new_user_mean()
  users, shown_rows = np.unique(shown_users, return_inverse=True)
  order = np.argsort(shown_rows, kind='stable')
  ratings = tf.RaggedTensor.from_value_rowids(shown.labels[order], shown_rows[order],
                                              nrows=len(users))
  profile = model.profile_inputs(
      {name: tf.constant(shown.features[name][order]) for name in model.movie_feature_names},
      ratings)
  if not np.array_equal(users, np.unique(held_users)):
    raise ValueError('every cold user needs shown and held ratings')
  rows = np.searchsorted(users, held_users)
  with_profile = dict(held.features)
  with_profile.update({name: tf.gather(value, rows) for name, value in profile.items()})
  rmse = lambda inputs: quality.scores(model(inputs, training=False).numpy(), held.labels)['rmse']

  fit_movies = fit.features[f.MOVIE_INDEX]
  movies, first_movie = np.unique(fit_movies, return_index=True)
  vectors, bias = model.ranking_movies({name: tf.constant(fit.features[name][first_movie])
                                        for name in model.movie_feature_names})
  first_held = np.unique(rows, return_index=True)[1]  # each user's features: a held row's
  user_inputs = {name: tf.constant(held.features[name][first_held])
                 for name in model.user_feature_names}
  user, offset = model.ranking_user({**user_inputs, **profile})
  scores = (offset[:, None] + tf.matmul(user, vectors, transpose_b=True) + bias).numpy()
  popular = np.tile(np.bincount(fit_movies)[movies].astype(float), (len(users), 1))
  shown_columns = np.searchsorted(movies, shown.features[f.MOVIE_INDEX])
  known = movies[np.minimum(shown_columns, len(movies) - 1)] == shown.features[f.MOVIE_INDEX]
  for table in (scores, popular):
    table[shown_rows[known], shown_columns[known]] = -np.inf
  relevant = [set() for _ in users]
  for row, movie in zip(rows.tolist(), held.features[f.MOVIE_INDEX].tolist()):
    relevant[row].add(str(movie))
  ndcg = lambda table: ranking_metrics.list_metrics(
      [[str(m) for m in movies[np.argsort(-r, kind='stable')[:10]]] for r in table], relevant,
      10, len(movies))['ndcg@10']
  return {'profile': rmse(with_profile), 'no_profile': rmse(held.features),
          'ndcg@10': ndcg(scores), 'most_popular_ndcg@10': ndcg(popular)}


def _cold_validation(data, hparams, epochs: int, seed: int, temp_dir: str) -> Dict:
  """A model's validation metrics per epoch (`_cold_metrics`) on users carved (with `seed`)
  out of the training users of bench.quality's cold-start protocol (see the module
  docstring)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from components.models import trainer  # pylint: disable=import-outside-toplevel
  protocol_train, _, _ = quality.cold_users_split(data, data.ratings, COLD_FRACTION, COLD_GIVEN,
                                                  seed=42)
  fit, shown, held = quality.cold_users_split(data, protocol_train, COLD_FRACTION, COLD_GIVEN,
                                              seed=seed)
  tft_output = quality.analyze(quality.raw_columns(data, fit), temp_dir)
  fit_examples = quality.transform(tft_output, quality.raw_columns(data, fit))
  shown_examples = quality.transform(tft_output, quality.raw_columns(data, shown), ordered=False)
  held_examples = quality.transform(tft_output, quality.raw_columns(data, held), ordered=False)

  class ColdMetrics(tf.keras.callbacks.Callback):
    def __init__(self):
      super().__init__()
      self.history: List[Dict[str, float]] = []

    def on_epoch_end(self, epoch, logs=None):
      self.history.append(_cold_metrics(self.model, fit_examples, shown_examples, shown.user_id,
                                        held_examples, held.user_id))

  watcher = ColdMetrics()
  trainer.fit_model(tft_output, hparams.replace(epochs=epochs), fit_examples, callbacks=[watcher])
  item_mean = quality.scores(quality.item_mean(fit.movie_id, fit.rating, held.movie_id),
                             held.rating)['rmse']
  return {'seed': seed, 'cold_users': len(np.unique(held.user_id)), 'item_mean_rmse': item_mean,
          'rmse_by_epoch': [r['profile'] for r in watcher.history],
          'rmse_no_profile_by_epoch': [r['no_profile'] for r in watcher.history],
          'ndcg@10_by_epoch': [r['ndcg@10'] for r in watcher.history],
          'most_popular_ndcg@10': watcher.history[-1]['most_popular_ndcg@10']}


def _cold_summary(runs: List[Dict]) -> Dict:
  """Per epoch, the mean over carvings of RMSE relative to the item-mean baseline."""
  relative = lambda key: np.mean([np.array(r[key]) / r['item_mean_rmse'] - 1 for r in runs], 0)
  with_profile = relative('rmse_by_epoch')
  best = int(np.argmin(with_profile))
  return {'carvings': [{k: (np.round(v, 4).tolist() if isinstance(v, (list, float)) else v)
                        for k, v in r.items()} for r in runs],
          'given_per_user': COLD_GIVEN,
          'rmse_vs_item_mean_by_epoch': [f'{100 * v:+.2f}%' for v in with_profile],
          'no_profile_vs_item_mean_by_epoch': [f'{100 * v:+.2f}%'
                                               for v in relative('rmse_no_profile_by_epoch')],
          'best_epoch': best + 1, 'best_rmse_vs_item_mean': f'{100 * with_profile[best]:+.2f}%',
          'ndcg@10_by_epoch': np.round(np.mean([r['ndcg@10_by_epoch'] for r in runs], 0),
                                       4).tolist(),
          'most_popular_ndcg@10': round(float(np.mean([r['most_popular_ndcg@10']
                                                       for r in runs])), 4)}


def _new_movies_validation(data, hparams) -> Dict:
  """content_based on movies new to it, carved out of the training movies of bench.quality's
  new-movie protocol: RMSE on their ratings against the genre baseline, and their AUC in
  `recommend` (see quality.evaluate_new_movies), with the configured epochs."""
  _, protocol_train, _ = quality.new_movies_split(data.ratings, NEW_MOVIES_FRACTION, seed=42)
  result = quality.evaluate_new_movies(data, {CONTENT_BASED: hparams}, [CONTENT_BASED],
                                       NEW_MOVIES_FRACTION, NEW_MOVIES_SEED, protocol_train)
  model, baseline = result[CONTENT_BASED], result['genre_baseline']
  return {'new_movies': result['new_movies'], 'ratings': result['test_ratings'],
          'rmse': round(model['rmse'], 4), 'genre_baseline_rmse': round(baseline['rmse'], 4),
          'rmse_vs_genre_baseline': f'{100 * (model["rmse"] / baseline["rmse"] - 1):+.2f}%',
          'auc': round(model['auc'], 4), 'most_popular_auc': round(result['most_popular']['auc'], 4)}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', default=quality.DEFAULT_DATA)
  parser.add_argument('--epochs', type=int, default=15)
  parser.add_argument('--models', nargs='+', default=list(MODEL_NAMES), choices=MODEL_NAMES)
  parser.add_argument('--checks', nargs='+', default=list(CHECKS), choices=CHECKS,
                      help='which validation checks to run (default: all)')
  parser.add_argument('--cold-seeds', nargs='+', type=int, default=[0, 1, 2],
                      help='seeds of the cold-user validation carvings (results are averaged)')
  parser.add_argument('--set', action='append', default=[], metavar='MODEL.NAME=VALUE',
                      help='override a hyperparameter of pipeline/configs.py (repeatable)')
  args = parser.parse_args(argv)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from components.models import trainer  # pylint: disable=import-outside-toplevel
  from components.models import hyperparameters  # pylint: disable=import-outside-toplevel
  from pipeline import configs  # pylint: disable=import-outside-toplevel
  try:
    hparams = hyperparameters.override(configs.default_hparams(), args.set)
  except ValueError as e:
    parser.error(str(e))

  data = quality.read_data_dir(parser, args.data_dir)
  is_test = splits.eval_mask(data, data.ratings, splits.RANDOM, 0.2, seed=42)
  train_part = data.ratings.take(~is_test)
  is_validation = np.zeros(len(train_part), dtype=bool)
  is_validation[np.random.default_rng(0).permutation(len(train_part))[:len(train_part) // 10]] = True
  fit, validation = train_part.take(~is_validation), train_part.take(is_validation)

  class ValidationRmse(tf.keras.callbacks.Callback):
    def __init__(self, examples):
      super().__init__()
      self.examples, self.history = examples, []

    def on_epoch_end(self, epoch, logs=None):
      predicted = self.model.predict(self.examples.features, batch_size=8192, verbose=0)
      self.history.append(quality.scores(predicted, self.examples.labels)['rmse'])

  class ValidationNdcg(tf.keras.callbacks.Callback):
    def __init__(self, fit_examples, examples):
      super().__init__()
      self.fit_examples, self.examples, self.history = fit_examples, examples, []

    def on_epoch_end(self, epoch, logs=None):
      self.history.append(_ndcg_at_10(self.model, self.fit_examples, self.examples))

  results = {}
  with tempfile.TemporaryDirectory() as temp_dir:
    if 'rating' in args.checks:
      tft_output, fit_examples, validation_examples = quality.prepared(
          data, fit, validation, os.path.join(temp_dir, 'rating'))
    for name in args.models if 'rating' in args.checks else []:
      model_hparams = hparams[name].replace(epochs=args.epochs)
      watcher = ValidationRmse(validation_examples)
      trainer.fit_model(tft_output, model_hparams, fit_examples, callbacks=[watcher])
      best = int(np.argmin(watcher.history))
      results[name] = {'hparams': model_hparams.to_config(),
                       'validation_rmse_by_epoch': [round(v, 4) for v in watcher.history],
                       'best_epoch': best + 1,
                       'best_validation_rmse': round(watcher.history[best], 4)}
      print(json.dumps({name: results[name]}), flush=True)
    for name in args.models if 'cold' in args.checks else []:
      cold = _cold_summary([
          _cold_validation(data, hparams[name], args.epochs, seed,
                           os.path.join(temp_dir, f'cold-{name}-{seed}'))
          for seed in args.cold_seeds])
      print(json.dumps({f'{name} cold users': cold}), flush=True)
    if 'ranking' in args.checks:
      per_user = splits.eval_mask(data, data.ratings, splits.PER_USER, 0.25, seed=42)
      fit, validation = _carve(data, data.ratings.take(~per_user), splits.PER_USER, 0.25, 1)
      tft_output, fit_examples, validation_examples = quality.prepared(
          data, fit, validation, os.path.join(temp_dir, 'ranking'))
    for name in args.models if 'ranking' in args.checks else []:
      watcher = ValidationNdcg(fit_examples, validation_examples)
      trainer.fit_model(tft_output, hparams[name].replace(epochs=args.epochs), fit_examples,
                        callbacks=[watcher])
      best = int(np.argmax(watcher.history))
      ranking = {'validation_ndcg@10_by_epoch': [round(v, 4) for v in watcher.history],
                 'best_epoch': best + 1, 'best_validation_ndcg@10': round(watcher.history[best], 4)}
      print(json.dumps({f'{name} ranking': ranking}), flush=True)
  if CONTENT_BASED in args.models and 'new_movies' in args.checks:
    print(json.dumps({f'{CONTENT_BASED} new movies': _new_movies_validation(
        data, hparams[CONTENT_BASED])}), flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
