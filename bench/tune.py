"""Chooses hyperparameters on validation data carved from the training data, never a test fold.

    python -m bench.tune [--epochs 15] [--models ...] [--set MODEL.NAME=VALUE ...]

Rating error: takes the seeded random 80/20 split of ML-100K (the pipeline's default), holds out
10% of its *training* part (seed 0) as validation, trains each model with the settings of
pipeline/configs.py (overridden by --set) for up to --epochs epochs and prints the validation
RMSE after each epoch and the best epoch.

Ranking (collaborative_filtering, whose ranking head `recommend` uses): takes the training part
of the per-user 75/25 split (Microsoft Recommenders' protocol, seed 42), holds out 25% of each
user's training ratings (seed 1) and prints the validation NDCG@10 after each epoch (top 10 of
the movies not rated in the carved training part; relevant = rated in the validation part).

The values in pipeline/configs.py come from runs of this script (see its docstring).
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

from bench import quality  # noqa: E402
from components import features as f  # noqa: E402
from components import movielens_formats as formats  # noqa: E402
from components import movielens_splits as splits  # noqa: E402
from components.model_names import COLLABORATIVE_FILTERING, MODEL_NAMES  # noqa: E402


def _overrides(settings, hparams):
  for setting in settings:
    key, _, value = setting.partition('=')
    model, _, name = key.partition('.')
    if model not in hparams or name not in hparams[model] or not value:
      raise SystemExit(f'error: --set {setting!r}: expected MODEL.NAME=VALUE with a known '
                       f'model and hyperparameter')
    hparams[model][name] = type(hparams[model][name])(value)
  return hparams


def _carve(data, ratings, strategy, fraction, seed):
  """(fit, validation) parts of `ratings` by a split strategy applied to them alone."""
  mask = splits.eval_mask(data, ratings, strategy, fraction, seed)
  return ratings.take(~mask), ratings.take(mask)


def _ndcg_at_10(model, fit_examples, validation_examples) -> float:
  """Mean NDCG@10 of the model's ranking head over the validation users."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  movies = np.unique(fit_examples.features[f.MOVIE_INDEX])
  vectors, bias = model.ranking_movies({f.MOVIE_INDEX: tf.constant(movies)})
  users = np.unique(validation_examples.features[f.USER_INDEX])
  user, offset = model.ranking_user({f.USER_INDEX: tf.constant(users)})
  scores = (offset[:, None] + tf.matmul(user, vectors, transpose_b=True) + bias).numpy()
  column = {m: i for i, m in enumerate(movies.tolist())}
  row = {u: i for i, u in enumerate(users.tolist())}
  for u, m in zip(fit_examples.features[f.USER_INDEX].tolist(),
                  fit_examples.features[f.MOVIE_INDEX].tolist()):
    if u in row:
      scores[row[u], column[m]] = -np.inf
  top = np.argsort(-scores, axis=1)[:, :10]
  recommended = {u: [str(movies[j]) for j in top[row[u]]] for u in users.tolist()}
  relevant = {}
  for u, m in zip(validation_examples.features[f.USER_INDEX].tolist(),
                  validation_examples.features[f.MOVIE_INDEX].tolist()):
    relevant.setdefault(u, set()).add(str(m))
  return quality.ranking_metrics(recommended, relevant, 10, len(movies))['ndcg@10']


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', default=quality.DEFAULT_DATA)
  parser.add_argument('--epochs', type=int, default=15)
  parser.add_argument('--models', nargs='+', default=list(MODEL_NAMES), choices=MODEL_NAMES)
  parser.add_argument('--set', action='append', default=[], metavar='MODEL.NAME=VALUE',
                      help='override a hyperparameter of pipeline/configs.py (repeatable)')
  args = parser.parse_args(argv)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from components import trainer  # pylint: disable=import-outside-toplevel
  from pipeline import configs  # pylint: disable=import-outside-toplevel
  hparams = _overrides(args.set, configs.default_hparams())

  data = formats.read_movielens(args.data_dir)
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
    tft_output, fit_examples, validation_examples = quality._prepared(  # pylint: disable=protected-access
        data, fit, validation, os.path.join(temp_dir, 'rating'))
    for name in args.models:
      model_hparams = dict(hparams[name], epochs=args.epochs)
      watcher = ValidationRmse(validation_examples)
      trainer.fit_model(name, tft_output, model_hparams, fit_examples, callbacks=[watcher])
      best = int(np.argmin(watcher.history))
      results[name] = {'hparams': model_hparams,
                       'validation_rmse_by_epoch': [round(v, 4) for v in watcher.history],
                       'best_epoch': best + 1,
                       'best_validation_rmse': round(watcher.history[best], 4)}
      print(json.dumps({name: results[name]}), flush=True)
    if COLLABORATIVE_FILTERING in args.models:
      per_user = splits.eval_mask(data, data.ratings, splits.PER_USER, 0.25, seed=42)
      fit, validation = _carve(data, data.ratings.take(~per_user), splits.PER_USER, 0.25, 1)
      tft_output, fit_examples, validation_examples = quality._prepared(  # pylint: disable=protected-access
          data, fit, validation, os.path.join(temp_dir, 'ranking'))
      watcher = ValidationNdcg(fit_examples, validation_examples)
      trainer.fit_model(COLLABORATIVE_FILTERING, tft_output,
                        dict(hparams[COLLABORATIVE_FILTERING], epochs=args.epochs),
                        fit_examples, callbacks=[watcher])
      best = int(np.argmax(watcher.history))
      ranking = {'validation_ndcg@10_by_epoch': [round(v, 4) for v in watcher.history],
                 'best_epoch': best + 1, 'best_validation_ndcg@10': round(watcher.history[best], 4)}
      print(json.dumps({f'{COLLABORATIVE_FILTERING} ranking': ranking}), flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
