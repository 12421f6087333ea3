"""Training batches: Keras' own batches of in-memory arrays, or chunks of one user's ratings.

Keras' batches (`array_batches`) are random ratings. Chunks (`chunked_dataset`, from
`user_chunk_from` examples on: trainer.user_chunk) exist because both models compute each
distinct user of a step once: content_based sums the user's stored ratings into a profile,
collaborative_filtering sums their history (SVD++) and a softmax normaliser over the catalogue.
In a batch of random ratings nearly every example has its own user, and a heavy user is picked
in proportion to their ratings, so the stored ratings a step touches grow with the data (a
random batch of 512 of the synthetic 10M touches 908,552).
Batches made of `chunk` ratings of the same user (a user's ratings shuffled and cut into
chunks, the chunks of all users shuffled) have batch / chunk distinct users or fewer: the same
examples per epoch, each user's work shared by a chunk.

Every training dataset here has tf.data's autotuning off (`without_autotuning`), as has
model_io's reading of Transform's output.
"""

import itertools
from typing import Dict, Iterator, Tuple

import numpy as np
import tensorflow as tf

from components.data import features as f


def chunked_order(users: np.ndarray, chunk: int, rng: np.random.Generator) -> np.ndarray:
  """A permutation of the examples whose users are `users` [N]: each user's examples in random
  order, cut into runs of at most `chunk`, the runs of all users in random order."""
  within = np.lexsort((rng.random(len(users)), users))      # by user, shuffled within a user
  grouped = users[within]
  first = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
  counts = np.diff(np.r_[first, len(grouped)])
  rank = np.arange(len(grouped)) - np.repeat(first, counts)  # position within the user's run
  runs_before = np.r_[0, np.cumsum(-(-counts // chunk))][:-1]
  run = np.repeat(runs_before, counts) + rank // chunk
  run_order = rng.permutation(int(run.max()) + 1 if len(run) else 0)
  return within[np.argsort(run_order[run], kind='stable')]


def chunked_dataset(features: Dict[str, np.ndarray], labels: np.ndarray, batch_size: int,
                    chunk: int, seed: int) -> tf.data.Dataset:
  """An endless dataset of (features, labels) batches, epoch after epoch, each epoch a new
  `chunked_order` (seeded by `seed` and the epoch); an epoch is ceil(N / batch_size) batches,
  the last one short. Batches are gathered from the arrays themselves, so no tensor copy of
  the columns is held beside them (about 1.6 GB for content_based at 10M ratings)."""
  columns = {name: np.asarray(values) for name, values in features.items()}
  users = columns[f.USER_INDEX]
  labels = np.asarray(labels)

  def batches() -> Iterator[Tuple[Dict[str, np.ndarray], np.ndarray]]:
    for epoch in itertools.count():
      order = chunked_order(users, chunk, np.random.default_rng([seed, epoch]))
      for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        yield {name: values[index] for name, values in columns.items()}, labels[index]

  def spec(values: np.ndarray) -> tf.TensorSpec:
    return tf.TensorSpec((None,) + values.shape[1:], tf.as_dtype(values.dtype))

  signature = ({name: spec(values) for name, values in columns.items()}, spec(labels))
  return without_autotuning(
      tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2))


def array_batches(features: Dict[str, np.ndarray], labels: np.ndarray, batch_size: int,
                  epochs: int) -> tf.data.Dataset:
  """The batches Keras' `fit(features, labels, batch_size, epochs=epochs, shuffle=True)`
  trains on, made by Keras' own adapter for in-memory arrays (a new permutation each epoch,
  `epochs` of them), with autotuning off. `fit` it with the same `epochs` and
  `steps_per_epoch`: ceil(N / batch_size) for whole epochs, fewer for a part of each."""
  from tf_keras.src.engine import data_adapter  # pylint: disable=import-outside-toplevel
  adapter = data_adapter.TensorLikeDataAdapter(features, labels, batch_size=batch_size,
                                               epochs=epochs, shuffle=True)
  return without_autotuning(adapter.get_dataset())


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """`dataset` without tf.data's autotuning: the Trainer's datasets (batches of in-memory arrays,
  and model_io's reading of Transform's output) need no tuning, and it can stall them.

  Autotuning runs a thread that retunes the pipeline at doubling intervals, up to a minute.
  When `fit` ends (or a read), deleting its iterator waits for that thread, and in TensorFlow
  2.16 the thread may first sleep out its interval: 18 s after the last epoch of a warm-started
  content_based fit at 300k ratings (the main thread in ~IteratorResource, the autotuning
  thread in Model::OptimizeLoop's timed wait; docs/timeline.md)."""
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.with_options(options)
