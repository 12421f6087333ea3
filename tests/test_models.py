"""Both models on tiny data: building, a few training steps, determinism, unseen IDs."""

import numpy as np
import pytest
import tensorflow as tf

from components import collaborative_filtering
from components import content_based
from components import features as f
from components import model_io

NUM_USERS, NUM_MOVIES, N = 6, 9, 32  # index spaces include the OOV row (the last index)


def _examples(seed=0, demographics=True):
  rng = np.random.default_rng(seed)
  pairs = rng.permutation((NUM_USERS - 1) * (NUM_MOVIES - 1))[:N]  # distinct, like ratings
  columns = {
      f.USER_INDEX: pairs // (NUM_MOVIES - 1),
      f.MOVIE_INDEX: pairs % (NUM_MOVIES - 1),
      f.GENRE_IDS: np.pad(rng.integers(1, 5, (N, 2)), ((0, 0), (0, f.MAX_GENRES - 2))),
      f.TITLE_TOKEN_IDS: np.pad(rng.integers(1, 7, (N, 3)), ((0, 0), (0, f.MAX_TITLE_TOKENS - 3))),
      f.RELEASE_BUCKET: rng.integers(0, f.NUM_RELEASE_BUCKETS, N),
  }
  if demographics:
    columns.update({f.AGE_BUCKET: rng.integers(0, 7, N), f.GENDER_ID: rng.integers(0, 2, N),
                    f.OCCUPATION_ID: rng.integers(0, 4, N), f.ZIP_PREFIX_ID: rng.integers(0, 5, N)})
  columns = {k: v.astype(np.int64) for k, v in columns.items()}
  return model_io.canonical_order(columns, rng.integers(1, 6, N).astype(np.float32))


VOCAB = {f.MOVIE_INDEX: NUM_MOVIES, f.USER_INDEX: NUM_USERS, f.GENRE_IDS: 7,
         f.TITLE_TOKEN_IDS: 9, f.GENDER_ID: 3, f.OCCUPATION_ID: 5, f.ZIP_PREFIX_ID: 6}


def _build(name, demographics=True):
  common = dict(embedding_dim=4, l2=1e-4, global_mean=3.0, seed=7)
  if name == 'cf':
    return collaborative_filtering.CollaborativeFilteringModel(NUM_USERS, NUM_MOVIES, **common)
  return content_based.ContentBasedModel(VOCAB, demographics, **common)


def _train(name, demographics=True):
  tf.keras.utils.set_random_seed(7)
  examples = _examples(demographics=demographics)
  model = _build(name, demographics)
  model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss='mse')
  history = model.fit(examples.features, examples.labels, batch_size=16, epochs=3, shuffle=True,
                      verbose=0)
  return model, examples, history.history['loss']


@pytest.mark.parametrize('name, demographics', [('cf', True), ('cb', True), ('cb', False)])
def test_trains_and_is_deterministic_for_a_seed(name, demographics):
  model_a, examples, losses = _train(name, demographics)
  model_b, _, _ = _train(name, demographics)
  assert losses[-1] < losses[0]
  predictions = model_a(examples.features).numpy()
  assert predictions.shape == (N,) and np.isfinite(predictions).all()
  np.testing.assert_array_equal(predictions, model_b(examples.features).numpy())


@pytest.mark.parametrize('name', ['cf', 'cb'])
def test_unseen_ids_use_the_oov_row(name):
  model, examples, _ = _train(name)
  unseen = {k: v[:2].copy() for k, v in examples.features.items()}
  unseen[f.USER_INDEX][:] = NUM_USERS - 1
  unseen[f.MOVIE_INDEX][:] = NUM_MOVIES - 1
  assert np.isfinite(model(unseen).numpy()).all()


def test_canonical_order_does_not_depend_on_the_read_order():
  examples = _examples()
  shuffled = np.random.default_rng(3).permutation(N)
  again = model_io.canonical_order({k: v[shuffled] for k, v in examples.features.items()},
                                   examples.labels[shuffled])
  for name, values in examples.features.items():
    np.testing.assert_array_equal(values, again.features[name])
  np.testing.assert_array_equal(examples.labels, again.labels)
