"""The fastest a collaborative_filtering step with the exact catalogue softmax can be here.

    python -m bench.softmax_ceiling [--users 944] [--movies 1683] [--width 96] [--repeats 300]

Times only the [users x movies] work that every such training step does
(components/collaborative_filtering.py, `_catalogue_products`): the logits' product, the
row maxima, exp and sums (forward), and the softmax gradient and its two products (backward).
They run in one tf.function on random tensors of the model's shapes (by default ML-100K: 944
user rows, 1,683 movie rows, 64 rating + 32 ranking factors).

It prints the milliseconds of that work per step and the examples/s this allows at a few batch
sizes. That is an upper bound on the Trainer's throughput: a real step also gathers each
example's terms, applies them as sparse products, and updates every table with Adam.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

BATCHES = (8192, 16384, 32768)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--users', type=int, default=944)
  parser.add_argument('--movies', type=int, default=1683)
  parser.add_argument('--width', type=int, default=96, help='rating + ranking factors')
  parser.add_argument('--repeats', type=int, default=300)
  args = parser.parse_args(argv)
  if min(args.users, args.movies, args.width, args.repeats) < 1:
    parser.error('--users, --movies, --width and --repeats must be at least 1')
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  generator = tf.random.Generator.from_seed(0)
  users = generator.normal([args.users, args.width]) * 0.3
  movies = generator.normal([args.movies, args.width]) * 0.3
  bias = generator.normal([args.movies])
  weight = generator.uniform([args.users])

  @tf.function
  def step():
    logits = tf.matmul(users, movies, transpose_b=True) + bias
    top = tf.reduce_max(logits, axis=1, keepdims=True)
    exp = tf.exp(logits - top)
    softmax = exp * (weight / tf.reduce_sum(exp, axis=1))[:, tf.newaxis]
    return (tf.matmul(softmax, movies), tf.matmul(softmax, users, transpose_a=True),
            tf.reduce_sum(softmax, axis=0))

  step()  # trace
  seconds = []
  for _ in range(args.repeats):
    started = time.perf_counter()
    step()
    seconds.append(time.perf_counter() - started)
  median = statistics.median(seconds)
  gflop = 3 * 2 * args.users * args.movies * args.width / 1e9
  print(f'{args.users} users x {args.movies} movies x {args.width} factors: '
        f'{median * 1e3:.2f} ms per step (median of {args.repeats}; products {gflop:.2f} GFLOP)')
  for batch in BATCHES:
    print(f'  batch {batch}: at most {batch / median:,.0f} examples/s')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
