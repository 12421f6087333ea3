"""Training batches (components/models/batches.py): chunks of one user's ratings, and Keras'
own batches of arrays without autotuning."""

import numpy as np
import pytest
import tensorflow as tf

from components.models import batches
from components.data import features as f


def _users(counts):
  return np.repeat(np.arange(len(counts)), counts)


def test_chunked_order_is_a_seeded_permutation_shuffled_within_users():
  users = _users([1, 70, 3, 0, 33, 200])
  order = batches.chunked_order(users, 8, np.random.default_rng(0))
  np.testing.assert_array_equal(np.sort(order), np.arange(len(users)))
  np.testing.assert_array_equal(order, batches.chunked_order(users, 8, np.random.default_rng(0)))
  assert not np.array_equal(order, batches.chunked_order(users, 8, np.random.default_rng(1)))
  heavy = order[users[order] == 5]  # the heaviest user's examples, in the order they come
  assert not np.array_equal(heavy, np.sort(heavy))


def test_chunks_hold_one_user_and_come_in_random_order():
  chunk = 8
  counts = np.random.default_rng(3).integers(1, 6, 50) * chunk  # full chunks only
  users = _users(counts)
  order = batches.chunked_order(users, chunk, np.random.default_rng(0))
  # Cut into consecutive chunks, each holds a single user...
  per_chunk = users[order].reshape(-1, chunk)
  assert (per_chunk == per_chunk[:, :1]).all()
  # ... and a user's chunks are spread over the epoch, not kept together.
  first_users = per_chunk[:, 0]
  assert (np.diff(first_users) != 0).sum() > len(counts)


def test_chunked_dataset_covers_every_example_once_per_epoch():
  users = _users([5, 17, 2, 9])
  features = {f.USER_INDEX: users, 'row': np.arange(len(users))}
  labels = np.arange(len(users), dtype=np.float32)
  dataset = batches.chunked_dataset(features, labels, batch_size=8, chunk=4, seed=5)
  steps = -(-len(users) // 8)
  epochs = []
  for _ in range(2):
    rows, sizes = [], []
    for batch, batch_labels in dataset.take(steps * (len(epochs) + 1)).skip(steps * len(epochs)):
      np.testing.assert_array_equal(batch['row'].numpy(), batch_labels.numpy())
      np.testing.assert_array_equal(batch[f.USER_INDEX].numpy(), users[batch['row'].numpy()])
      rows.append(batch['row'].numpy())
      sizes.append(len(rows[-1]))
    assert sizes == [8] * (steps - 1) + [len(users) - 8 * (steps - 1)]
    epochs.append(np.concatenate(rows))
    np.testing.assert_array_equal(np.sort(epochs[-1]), np.arange(len(users)))
  assert not np.array_equal(epochs[0], epochs[1])  # a new order each epoch


def test_a_batch_of_chunks_has_few_distinct_users():
  users = _users(np.full(200, 64))
  dataset = batches.chunked_dataset({f.USER_INDEX: users}, np.zeros(len(users), np.float32),
                                    batch_size=256, chunk=32, seed=0)
  distinct = [len(np.unique(b[f.USER_INDEX].numpy())) for b, _ in dataset.take(20)]
  random = [len(np.unique(users[np.random.default_rng(i).permutation(len(users))[:256]]))
            for i in range(20)]
  assert max(distinct) <= 256 // 32 and min(random) > 100
  assert tf.is_tensor(next(iter(dataset))[1])


def _fit(data, seed, **fit_args):
  """A small Keras model's weights and loss history after `fit(**fit_args)` on `data`."""
  tf.keras.utils.set_random_seed(seed)
  inputs = tf.keras.Input((3,), name='x')
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(1)(tf.keras.layers.Dense(4)(inputs)))
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss='mse')
  history = model.fit(verbose=0, **data, **fit_args)
  return [w.copy() for w in model.get_weights()], history.history['loss']


@pytest.mark.parametrize('steps_per_epoch', [None, 3])  # whole epochs (5 batches), part of one
def test_array_batches_train_exactly_as_keras_fit_on_the_arrays(steps_per_epoch):
  rng = np.random.default_rng(0)
  features = {'x': rng.normal(size=(37, 3)).astype(np.float32)}
  labels = (features['x'] @ np.array([1.0, -2.0, 0.5], np.float32) + 1.0)[:, None]
  keras = _fit({'x': features, 'y': labels}, 7, batch_size=8, epochs=4, shuffle=True,
               steps_per_epoch=steps_per_epoch)
  ours = _fit({'x': batches.array_batches(features, labels, 8, 4)}, 7, epochs=4,
              steps_per_epoch=steps_per_epoch or 5)
  np.testing.assert_array_equal(keras[1], ours[1])
  assert len(keras[0]) == len(ours[0])
  for expected, got in zip(keras[0], ours[0]):
    np.testing.assert_array_equal(expected, got)
  # The same fit over the batches in order differs: the comparison can tell orders apart.
  unshuffled = _fit({'x': features, 'y': labels}, 7, batch_size=8, epochs=4, shuffle=False,
                    steps_per_epoch=steps_per_epoch)
  assert not np.array_equal(unshuffled[1], ours[1])


def test_training_datasets_have_autotuning_off():
  features = {f.USER_INDEX: np.arange(20) % 3, 'x': np.ones((20, 2), np.float32)}
  labels = np.ones(20, np.float32)
  for dataset in (batches.array_batches(features, labels, 4, 2),
                  batches.chunked_dataset(features, labels, 4, 2, seed=0)):
    assert dataset.options().autotune.enabled is False
