"""How long a Trainer's training step takes on a finished run's Transform output.

    python -m bench.trainer_steps --run-dir RUN --model content_based [--steps 40]
        [--set NAME=VALUE ...] [--profile-dir DIR] [--all-columns]

Reads the run's transformed training examples as the Trainer does (model_io.load_examples with
trainer.columns_read; --all-columns: every column per example, as before content_based read its
movies' content as a table) and prints the seconds and the process's peak resident memory; calls
`components.models.trainer.fit_model` with the configured hyperparameters (overridden by --set) and
stops after --steps steps; prints the first step's seconds (tracing) and the steady
milliseconds per step after 5 warm-up steps, with examples/s and the epoch time that implies.
For big data, where a whole pipeline run does not fit an afternoon (docs/performance.md has the
10M step times it measured). --profile-dir
records a TensorFlow profiler trace of steps 5-15.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import glob
import os
import resource
import time
from typing import Tuple


WARM_UP = 5


def _latest(pattern: str) -> str:
  found = sorted(glob.glob(pattern), key=os.path.getmtime)
  if not found:
    raise SystemExit(f'error: nothing matches {pattern}: is it a finished run\'s --output-dir?')
  return found[-1]


def transform_dirs(run_dir: str) -> Tuple[str, str]:
  """(transform graph folder, transformed training split folder) of a finished run's latest
  Transform execution."""
  tfx_dir = os.path.join(run_dir, 'tfx', 'Transform')
  return (_latest(os.path.join(tfx_dir, 'transform_graph', '*')),
          _latest(os.path.join(tfx_dir, 'transformed_examples', '*', 'Split-train')))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--run-dir', required=True, help="a finished run's --output-dir")
  parser.add_argument('--model', required=True, choices=['content_based',
                                                        'collaborative_filtering'])
  parser.add_argument('--steps', type=int, default=40)
  parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE')
  parser.add_argument('--profile-dir')
  parser.add_argument('--all-columns', action='store_true',
                      help='read every transformed column per example')
  args = parser.parse_args()
  if args.steps <= WARM_UP + 1:
    parser.error(f'--steps must be more than {WARM_UP + 1}')

  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_transform as tft  # pylint: disable=import-outside-toplevel
  from components.models import hyperparameters, model_io, trainer  # pylint: disable=import-outside-toplevel
  from pipeline import configs  # pylint: disable=import-outside-toplevel

  graph, examples = transform_dirs(args.run_dir)
  transform_output = tft.TFTransformOutput(graph)
  try:
    hparams = hyperparameters.override(
        {args.model: configs.default_hparams()[args.model].replace(epochs=1)},
        [f'{args.model}.{item}' for item in args.set])[args.model]
  except ValueError as e:
    parser.error(str(e))
  per_example, per_movie = trainer.columns_read(
      hparams, list(transform_output.transformed_feature_spec()))
  if args.all_columns:
    per_example, per_movie = None, ()
  started = time.monotonic()
  train = model_io.load_examples([os.path.join(examples, '*')], transform_output, per_example,
                                 per_movie)
  print(f'read {len(train):,} examples ({len(train.features)} columns per example, '
        f'{len(train.movie_content)} per movie) in {time.monotonic() - started:.1f} s; peak '
        f'resident memory {_peak_gib():.2f} GiB', flush=True)
  ends = []

  class Steps(tf.keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      ends.append(time.monotonic())
      if args.profile_dir and batch == WARM_UP:
        tf.profiler.experimental.start(args.profile_dir)
      if args.profile_dir and batch == WARM_UP + 10:
        tf.profiler.experimental.stop()
      if batch + 1 >= args.steps:
        self.model.stop_training = True

  started = time.monotonic()
  trainer.fit_model(transform_output, hparams, train, callbacks=[Steps()])
  steady = ends[WARM_UP:]
  per_step = (steady[-1] - steady[0]) / (len(steady) - 1)
  batch_size = hparams.batch_size
  print(f'{args.model} {hparams}\nfirst step {ends[0] - started:.1f} s; steady '
        f'{per_step * 1000:.1f} ms per step = {batch_size / per_step:,.0f} examples/s; an epoch '
        f'would take {len(train) / batch_size * per_step:,.0f} s; peak resident memory '
        f'{_peak_gib():.2f} GiB')


def _peak_gib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


if __name__ == '__main__':
  main()
