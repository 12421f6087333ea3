"""Training judged by time to accuracy: how long until validation accuracy is as good as it gets.

    python -m bench.time_to_accuracy [--sizes 1000000] [--ml-100k] [--models ...] [--no-peer]

For each dataset (synthetic MovieLens-latest data of each size from `bench.synth`, and with
--ml-100k the real ML-100K): the training part of the pipeline's seeded random 80/20 split, of
which 10% (seed 0) is carved out as validation; no test data is looked at. Each model trains as
the Trainer trains it (`trainer.fit_model`, the settings of pipeline/configs.py). After every
epoch, and at even points within an epoch where a fit has fewer than 8 epochs (at 10M ratings
the example budget trains one or two), the clock stops while the validation RMSE and the
ranking head's NDCG@10 (top 10 of the movies a user did not rate in training; relevant: rated
in validation) are computed. A model's time to accuracy is the training time (building and
tracing included) until the first such point whose validation RMSE is within 0.005 of the last
one's, and likewise for NDCG@10.

The peer: implicit's alternating least squares (in setup.py's `[test]` extra and the lock, for
this benchmark only) on the same fit part, every rating a positive, 64 factors, 15
iterations, its NDCG@10 on the same validation users after each iteration, timed the same way.
ALS ranks; it predicts no rating, so it has no RMSE.

Writes bench/results/time-to-accuracy.md and .json.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

from bench import provenance
from bench import quality
from bench import tune
from components.data import movielens_formats as formats
from components.data import movielens_splits as splits
from components.models.model_names import MODEL_NAMES

RESULTS = os.path.join(provenance.PROJECT_DIR, 'bench', 'results', 'time-to-accuracy.md')
WITHIN = 0.005  # "within 0.005 of its final value" (the scale issue)
VALIDATION_FRACTION, VALIDATION_SEED = 0.1, 0
POINTS = 8  # validations at least per fit (one per epoch when there are more epochs)


def time_to_within(seconds: List[float], values: List[float], within: float = WITHIN):
  """(seconds, point) of the first validation point (1-based) whose value is within `within`
  of the last one's."""
  final = values[-1]
  for point, (spent, value) in enumerate(zip(seconds, values), start=1):
    if abs(value - final) <= within:
      return spent, point
  return seconds[-1], len(values)  # (the last point is always within)


def _rmse(predicted, truth, scale: formats.RatingScale) -> float:
  predicted = np.clip(np.asarray(predicted).reshape(-1), scale.low, scale.high)
  return float(np.sqrt(np.mean((predicted - truth) ** 2)))


def checkpoints(epochs: int, steps_per_epoch: int, points: int = POINTS) -> List[int]:
  """The batches (1-based, within an epoch) after which validation runs: the epoch's end, and
  evenly between where a fit has fewer than `points` epochs (big data trains one or two)."""
  per_epoch = -(-points // epochs)
  return sorted({max(1, round(steps_per_epoch * j / per_epoch)) for j in range(1, per_epoch + 1)})


def train_and_watch(tft_output, hparams, fit, validation, scale) -> Dict:
  """Trains one model as the Trainer does; at each checkpoint: epochs done (a fraction within
  an epoch), training seconds so far (the clock stopped while validating), validation RMSE and
  NDCG@10."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from components.models import trainer  # pylint: disable=import-outside-toplevel
  epochs, steps = trainer.training_steps(hparams, len(fit))
  marks = set(checkpoints(epochs, steps))

  class Watch(tf.keras.callbacks.Callback):
    def __init__(self):
      super().__init__()
      self.epochs, self.seconds, self.rmse, self.ndcg = [], [], [], []
      self.epoch, self.spent, self.resumed = 0, 0.0, time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
      self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
      if batch + 1 not in marks:
        return
      self.spent += time.monotonic() - self.resumed
      self.epochs.append(self.epoch + (batch + 1) / steps)
      self.seconds.append(self.spent)
      predicted = self.model.predict(validation.features, batch_size=8192, verbose=0)
      self.rmse.append(_rmse(predicted, validation.labels, scale))
      self.ndcg.append(tune._ndcg_at_10(self.model, fit, validation))  # pylint: disable=protected-access
      self.resumed = time.monotonic()

  watch = Watch()  # the clock starts here: building and tracing the model count
  trainer.fit_model(tft_output, hparams, fit, callbacks=[watch])
  return {'epochs_done': watch.epochs, 'seconds': watch.seconds, 'rmse': watch.rmse,
          'ndcg@10': watch.ndcg}


def als_and_watch(fit: formats.Ratings, validation: formats.Ratings, iterations: int = 15,
                  factors: int = 64) -> Dict:
  """implicit's ALS on the fit ratings (every rating a positive), NDCG@10 after each
  iteration on the validation users, timed like the models (the clock stopped while
  validating)."""
  import scipy.sparse as sparse  # pylint: disable=import-outside-toplevel
  from implicit.cpu.als import AlternatingLeastSquares  # pylint: disable=import-outside-toplevel
  users, user_rows = np.unique(fit.user_id, return_inverse=True)
  movies, movie_columns = np.unique(fit.movie_id, return_inverse=True)
  user_items = sparse.csr_matrix((np.ones(len(fit), np.float32), (user_rows, movie_columns)),
                                 shape=(len(users), len(movies)))
  fit_users = set(users.tolist())
  relevant: Dict[str, set] = {}  # validation users with training ratings: their movies
  for u, m in zip(validation.user_id.tolist(), validation.movie_id.tolist()):
    if u in fit_users:
      relevant.setdefault(str(u), set()).add(str(m))
  known = list(relevant)
  rows = np.searchsorted(users, np.array([int(u) for u in known]))
  watch = {'epochs_done': [], 'seconds': [], 'ndcg@10': []}
  clock = {'spent': 0.0, 'resumed': time.monotonic()}

  def callback(iteration, elapsed, loss):  # pylint: disable=unused-argument
    clock['spent'] += time.monotonic() - clock['resumed']
    watch['epochs_done'].append(iteration + 1)
    watch['seconds'].append(clock['spent'])
    ids, _ = model.recommend(rows, user_items[rows], N=10, filter_already_liked_items=True)
    recommended = {u: [str(movies[j]) for j in ids[i]] for i, u in enumerate(known)}
    watch['ndcg@10'].append(quality.ranking_metrics(recommended, relevant, 10,
                                                    len(movies))['ndcg@10'])
    clock['resumed'] = time.monotonic()

  from threadpoolctl import threadpool_limits  # pylint: disable=import-outside-toplevel
  with threadpool_limits(1, 'blas'):  # implicit's own threads, not OpenBLAS's (its advice)
    model = AlternatingLeastSquares(factors=factors, regularization=0.05,
                                    iterations=iterations, random_state=0, num_threads=0)
    model.fit(user_items, show_progress=False, callback=callback)
  return watch


def _synthetic(size: int, work: str) -> str:
  folder = os.path.join(work, f'synth-{size}')
  if not os.path.isfile(os.path.join(folder, 'ratings.csv')):
    subprocess.run([sys.executable, '-m', 'bench.synth', '--ratings', str(size), '--output',
                    folder], cwd=provenance.PROJECT_DIR, check=True, stdout=subprocess.DEVNULL)
  return folder


def measure(name: str, data_dir: str, models, peer: bool) -> Dict:
  """Every model's (and the peer's) curve and time to accuracy on one dataset."""
  from pipeline import configs  # pylint: disable=import-outside-toplevel
  data = formats.read_movielens(data_dir)
  is_test = splits.eval_mask(data, data.ratings, splits.RANDOM, 0.2, 42)  # the pipeline's
  training = data.ratings.take(~is_test)
  carve = splits.eval_mask(data, training, splits.RANDOM, VALIDATION_FRACTION, VALIDATION_SEED)
  fit, validation = training.take(~carve), training.take(carve)
  result = {'data': name, 'fit_ratings': len(fit), 'validation_ratings': len(validation),
            'models': {}}
  with tempfile.TemporaryDirectory() as temp_dir:
    started = time.monotonic()
    tft_output = quality.analyze(quality.raw_columns(data, fit), temp_dir)
    fit_examples = quality.transform(tft_output, quality.raw_columns(data, fit))
    validation_examples = quality.transform(tft_output, quality.raw_columns(data, validation),
                                            ordered=False)
    result['transform_seconds'] = time.monotonic() - started
    hparams = configs.default_hparams()
    for model in models:
      curve = train_and_watch(tft_output, hparams[model], fit_examples, validation_examples,
                              data.scale)
      result['models'][model] = dict(curve, **_summary(curve))
      print(f"{name} {model}: {_line(result['models'][model])}", flush=True)
  if peer:
    curve = als_and_watch(fit, validation)
    result['models']['implicit ALS'] = dict(curve, **_summary(curve))
    print(f"{name} implicit ALS: {_line(result['models']['implicit ALS'])}", flush=True)
  return result


def _summary(curve: Dict) -> Dict:
  """The time to accuracy of a curve, where its points are in epochs (iterations for ALS)."""
  done = curve['epochs_done']
  summary = {'epochs': done[-1], 'points': len(done), 'total_seconds': curve['seconds'][-1]}
  for metric in ('rmse', 'ndcg@10'):
    if curve.get(metric):
      spent, point = time_to_within(curve['seconds'], curve[metric])
      summary[metric] = curve[metric]
      summary[f'{metric}_final'] = curve[metric][-1]
      summary[f'{metric}_seconds'] = spent
      summary[f'{metric}_point'] = point
      summary[f'{metric}_epochs'] = done[point - 1]
      best = int(np.argmin(curve[metric]) if metric == 'rmse' else np.argmax(curve[metric]))
      summary[f'{metric}_best'] = curve[metric][best]
      summary[f'{metric}_best_epochs'] = done[best]
  return summary


def _epochs(value: float) -> str:
  return f'{value:g}' if float(value).is_integer() else f'{value:.2f}'


def _cell(row: Dict, metric: str) -> str:
  if f'{metric}_final' not in row:
    return '-'
  return (f"{row[f'{metric}_final']:.4f}: {row[f'{metric}_seconds']:.2f} s "
          f"(epoch {_epochs(row[f'{metric}_epochs'])} of {_epochs(row['epochs'])}); best "
          f"{row[f'{metric}_best']:.4f} at epoch {_epochs(row[f'{metric}_best_epochs'])}")


def _line(row: Dict) -> str:
  return f"RMSE {_cell(row, 'rmse')}; NDCG@10 {_cell(row, 'ndcg@10')}"


def render(command: str, results: List[Dict]) -> str:
  lines = ['# Time to accuracy', '', f'Command: `{command}`  ', f'Date: {provenance.now()}  ',
           f'Machine: {provenance.machine()}  ', f'Commit: {provenance.commit()}', '',
           'Validation carved from the training part of the seeded random 80/20 split (10%, '
           'seed 0). Validated after every epoch, and at even points within an epoch where a '
           f'fit has fewer than {POINTS} epochs (epoch 0.25: a quarter into the first). Each '
           'cell: the final validation value, then the training time until the first point '
           f'within {WITHIN} of it (the clock stopped while validating; building and tracing '
           'the model included), and the best point\'s value. Where the best is well before '
           'the end, the model overfits: "within 0.005 of the final" is then reached early by '
           'a curve on its way down and back up. ALS counts iterations as epochs.', '',
           '| data | model | validation RMSE: time to within 0.005 | validation NDCG@10: time '
           'to within 0.005 | whole fit |', '|---|---|---|---|---:|']
  for result in results:
    for model, row in result['models'].items():
      lines.append(f"| {result['data']} ({result['fit_ratings']:,} fit / "
                   f"{result['validation_ratings']:,} validation) | {model} | "
                   f"{_cell(row, 'rmse')} | {_cell(row, 'ndcg@10')} | "
                   f"{row['total_seconds']:.2f} s |")
  lines += ['', 'Per point (epochs done, seconds, RMSE, NDCG@10) in the JSON file beside this '
            'one.']
  return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--sizes', default='1000000', help='synthetic sizes, comma-separated '
                                                         '("" for none)')
  parser.add_argument('--ml-100k', action='store_true', help='also the real ML-100K')
  parser.add_argument('--models', nargs='+', default=list(MODEL_NAMES), choices=MODEL_NAMES)
  parser.add_argument('--no-peer', action='store_true', help='skip implicit\'s ALS')
  parser.add_argument('--work-dir', help='where synthetic data goes (default: temporary)')
  parser.add_argument('--results', default=RESULTS)
  args = parser.parse_args(argv)
  peer = not args.no_peer
  if peer:
    try:
      import implicit  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
      parser.error('the peer is implicit\'s ALS: pip install implicit (or pass --no-peer)')
  command = 'python -m bench.time_to_accuracy ' + ' '.join(
      argv if argv is not None else sys.argv[1:])
  with tempfile.TemporaryDirectory(prefix='bench-tta-') as scratch:
    work = args.work_dir or scratch
    datasets = [('ml-100k', provenance.ML_100K_DIR)] if args.ml_100k else []
    datasets += [(f'synthetic {int(s):,}', _synthetic(int(s), work))
                 for s in args.sizes.split(',') if s]
    results = [measure(name, folder, args.models, peer) for name, folder in datasets]
  report = {'command': command.strip(), 'date': provenance.now(),
            'machine': provenance.machine(), 'commit': provenance.commit(), 'within': WITHIN,
            'results': results}
  provenance.write(args.results, render(command.strip(), results), report)
  print(f'Results: {args.results}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
