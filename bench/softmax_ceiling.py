"""The fastest a collaborative_filtering step with the exact catalogue softmax can be here.

    python -m bench.softmax_ceiling [--users 944] [--movies 1683] [--dim 64] [--ranking-dim 32]
        [--repeats 300]

Times the model's own whole-catalogue products (components/models/collaborative_filtering.py,
`_catalogue_products`), forward and gradient, for a batch of one example: what is left is the
[users x movies] work every such training step does whatever its batch (the logits' products,
row maxima, exp and sums; the softmax part of the gradient's products). Random tables of the
model's shapes, by default ML-100K's: 944 user rows, 1,683 movie rows, 64 rating + 32 ranking
factors.

It prints the milliseconds of that work per step and the examples/s this allows at a few batch
sizes. That is an upper bound on the Trainer's throughput: a real step also gathers each
example's terms, applies them as sparse products, and updates every table with Adam.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import statistics
import time

BATCHES = (8192, 16384, 32768)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--users', type=int, default=944)
  parser.add_argument('--movies', type=int, default=1683)
  parser.add_argument('--dim', type=int, default=64, help='rating factors')
  parser.add_argument('--ranking-dim', type=int, default=32, help='ranking-only factors')
  parser.add_argument('--repeats', type=int, default=300)
  args = parser.parse_args(argv)
  if min(args.users, args.movies, args.dim, args.ranking_dim, args.repeats) < 1:
    parser.error('--users, --movies, --dim, --ranking-dim and --repeats must be at least 1')
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from components.models import collaborative_filtering  # pylint: disable=import-outside-toplevel

  model = collaborative_filtering.CollaborativeFilteringModel(
      num_users=args.users, num_movies=args.movies, embedding_dim=args.dim, l2=0.0,
      global_mean=3.5, seed=0, retrieval_dim=args.ranking_dim, score_all_users=True,
      history=(np.arange(args.users), np.arange(args.users) % args.movies))
  example = tf.constant([0], tf.int64)
  # Every user weighs in the softmax, as in a batch where every user has examples.
  products = model._catalogue_products(  # pylint: disable=protected-access
      example, example, tf.ones([args.users]))
  generator = tf.random.Generator.from_seed(0)
  tables = [generator.normal([args.users, args.dim]) * 0.3,
            generator.normal([args.movies, args.dim]) * 0.3,
            generator.normal([args.users, args.ranking_dim]) * 0.3,
            generator.normal([args.movies, args.ranking_dim]) * 0.3,
            generator.normal([args.movies])]

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      tape.watch(tables)
      outputs = products(*tables)
    return tape.gradient(outputs, tables)

  step()  # trace
  seconds = []
  for _ in range(args.repeats):
    started = time.perf_counter()
    step()
    seconds.append(time.perf_counter() - started)
  median = statistics.median(seconds)
  width = args.dim + args.ranking_dim
  gflop = 3 * 2 * args.users * args.movies * width / 1e9
  print(f'{args.users} users x {args.movies} movies x {args.dim} + {args.ranking_dim} factors: '
        f'{median * 1e3:.2f} ms per step (median of {args.repeats}; products {gflop:.2f} GFLOP)')
  for batch in BATCHES:
    print(f'  batch {batch}: at most {batch / median:,.0f} examples/s')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
