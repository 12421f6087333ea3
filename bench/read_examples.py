"""How long the Trainer's read of Transform's output takes, with tf.data's autotuning off (as the
Trainer reads) and on.

    python -m bench.read_examples --run-dir RUN [--copies 10] [--reads 2]

Reads a finished run's transformed training files, listed --copies times (ten copies of the
synthetic 1M's make 10M examples), through model_io.parsed_batches (every column), --reads
times per process; off and on alternate, each in a new process, twice. Prints each read's
seconds and the seconds its iterator's deletion took: with autotuning on, the deletion waits
for the autotuning thread (components/models/batches.py, without_autotuning).
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import glob
import os
import subprocess
import sys
import time

from bench import trainer_steps


def read(run_dir: str, copies: int, reads: int, autotune: bool) -> None:
  """Reads the run's training files `reads` times in this process and prints the seconds."""
  import gc  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_transform as tft  # pylint: disable=import-outside-toplevel
  from components.models import model_io  # pylint: disable=import-outside-toplevel

  graph, train_split = trainer_steps.transform_dirs(run_dir)
  spec = tft.TFTransformOutput(graph).transformed_feature_spec()
  files = sorted(glob.glob(os.path.join(train_split, '*')))
  options = tf.data.Options()
  options.autotune.enabled = autotune
  for k in range(reads):
    started = time.monotonic()
    batches = model_io.parsed_batches(files * copies, spec).with_options(options)
    iterator = batches.as_numpy_iterator()
    examples = sum(len(next(iter(batch.values()))) for batch in iterator)
    read_at = time.monotonic()
    del iterator
    gc.collect()
    print(f'autotuning {"on " if autotune else "off"}  read {k + 1}: {examples:,} examples in '
          f'{read_at - started:.2f} s, iterator deleted in {time.monotonic() - read_at:.2f} s',
          flush=True)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--run-dir', required=True, help="a finished run's --output-dir")
  parser.add_argument('--copies', type=int, default=10)
  parser.add_argument('--reads', type=int, default=2, help='reads per process')
  parser.add_argument('--autotune', choices=['on', 'off'], help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.copies < 1 or args.reads < 1:
    parser.error('--copies and --reads must be at least 1')
  if args.autotune:
    read(args.run_dir, args.copies, args.reads, args.autotune == 'on')
    return
  for autotune in ('off', 'on') * 2:
    subprocess.run([sys.executable, '-m', 'bench.read_examples', '--run-dir', args.run_dir,
                    '--copies', str(args.copies), '--reads', str(args.reads),
                    '--autotune', autotune], check=True)


if __name__ == '__main__':
  main()
