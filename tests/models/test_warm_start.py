"""Warm start: a model seeded from a saved one over reordered vocabularies rates as it did."""

import os

import numpy as np
import pytest
import tensorflow as tf

from components.data import features as f
from components.models import model_io
from components.models import warm_start
from tests.models import test_models as tm

# Each transformed feature's vocabulary and the row of its first token (1: 0 is padding).
INDEXED = {f.USER_INDEX: (f.USER_VOCAB, 0), f.MOVIE_INDEX: (f.MOVIE_VOCAB, 0),
           f.GENRE_IDS: (f.GENRE_VOCAB, 1), f.TITLE_TOKEN_IDS: (f.TITLE_VOCAB, 1),
           f.GENDER_ID: (f.GENDER_VOCAB, 0), f.OCCUPATION_ID: (f.OCCUPATION_VOCAB, 0),
           f.ZIP_PREFIX_ID: (f.ZIP_VOCAB, 0)}


def _tokens(feature):
  """The base model's tokens of `feature`'s vocabulary: its index space less padding and OOV."""
  vocab, first = INDEXED[feature]
  return [f'{vocab}-{i}'.encode() for i in range(tm.VOCAB[feature] - first - f.OOV_BUCKETS)]


def _reordered(values, feature):
  """`values` (indices over the base vocabulary) in the reversed vocabulary's indices."""
  _, first = INDEXED[feature]
  count = len(_tokens(feature))
  inside = (values >= first) & (values < first + count)
  return np.where(inside, first + count - 1 - (values - first), values)


def _save(model, folder, demographics=True):
  """The model as a SavedModel with its vocabularies as assets, as the Trainer exports it
  (without demographics, as ML-latest's: no gender, occupation or zip vocabulary)."""
  model.save(folder, save_format='tf', save_traces=False)  # as signatures.export saves it
  os.makedirs(os.path.join(folder, 'assets'), exist_ok=True)
  for feature, (vocab, _) in INDEXED.items():
    if not demographics and feature in (f.GENDER_ID, f.OCCUPATION_ID, f.ZIP_PREFIX_ID):
      continue
    with open(os.path.join(folder, 'assets', vocab), 'wb') as file:
      file.write(b''.join(token + b'\n' for token in _tokens(feature)))


def _examples(demographics=True):
  """test_models' examples, with each movie's content the same in all its rows (the model
  keeps one row of content per movie, so it must not depend on which row comes last)."""
  examples = tm._examples(demographics=demographics)
  movies = examples.features[f.MOVIE_INDEX]
  _, first = np.unique(movies, return_index=True)
  row_of_movie = np.zeros(tm.NUM_MOVIES, np.int64)
  row_of_movie[movies[first]] = first
  for name in (f.GENRE_IDS, f.TITLE_TOKEN_IDS, f.RELEASE_BUCKET):
    examples.features[name] = examples.features[name][row_of_movie[movies]]
  return examples


def _reordered_examples(examples):
  columns = {name: _reordered(values, name) if name in INDEXED else values.copy()
             for name, values in examples.features.items()}
  return model_io.canonical_order(columns, examples.labels.copy())


def _new_vocabulary(name):
  feature = next(k for k, (vocab, _) in INDEXED.items() if vocab == name)
  return _tokens(feature)[::-1]


def _pairs(examples, new_ratings=1):
  """(users, movies) of `examples`' ratings and of `new_ratings` more (a run's training
  ratings: the base model's and a new span's)."""
  users, movies = examples.features[f.USER_INDEX], examples.features[f.MOVIE_INDEX]
  rated = set(zip(users.tolist(), movies.tolist()))
  new = [(u, m) for u in range(tm.NUM_USERS - 1) for m in range(tm.NUM_MOVIES - 1)
         if (u, m) not in rated][:new_ratings]
  return (np.concatenate([users, [u for u, _ in new]]).astype(np.int64),
          np.concatenate([movies, [m for _, m in new]]).astype(np.int64))


def _built(name, examples, demographics, **options):
  model = tm._build(name, examples, demographics, **options)
  model.build_weights({k: v[:1] for k, v in examples.features.items()})
  return model


@pytest.mark.parametrize('name, demographics', [('cf', True), ('cb', True), ('cb', False)])
def test_a_warm_started_model_rates_as_the_base_over_reordered_vocabularies(
    name, demographics, tmp_path):
  base, examples, _ = tm._train(name, demographics, _examples(demographics), epochs=2)
  _save(base, str(tmp_path), demographics)
  moved = _reordered_examples(examples)
  model = _built(name, moved, demographics)
  before = model(moved.features).numpy()
  report = warm_start.warm_start(model, str(tmp_path), _new_vocabulary, _pairs(moved))
  # Every table keyed by a vocabulary was moved (a table left out would rate other tokens).
  expected = {path for path in warm_start.variable_paths(model)
              if path.rsplit('/', 1)[0] in model.vocabulary_tables}
  assert set(report['tables']) == expected and report['copied']
  assert report['base_ratings'] == tm.N
  # The same ratings, example by example (both sorted by user and movie: reorder to match).
  order = np.lexsort((examples.features[f.MOVIE_INDEX], examples.features[f.USER_INDEX]))
  original = {k: v[order] for k, v in examples.features.items()}
  key = lambda columns: (np.asarray(columns[f.USER_INDEX]) * tm.NUM_MOVIES
                         + np.asarray(columns[f.MOVIE_INDEX]))
  remapped = {k: _reordered(v, k) if k in INDEXED else v for k, v in original.items()}
  position = {k: i for i, k in enumerate(key(moved.features))}
  rows = [position[k] for k in key(remapped)]
  np.testing.assert_allclose(model(moved.features).numpy()[rows], base(original).numpy(),
                             rtol=1e-5, atol=1e-5)
  assert not np.allclose(before[rows], base(original).numpy(), atol=1e-3)
  # ... and ranks as it did: the ranking head's score of each example's (user, movie).
  np.testing.assert_allclose(_ranking_scores(model, moved.features)[rows],
                             _ranking_scores(base, original), rtol=1e-5, atol=1e-5)


def _ranking_scores(model, inputs):
  inputs = model.with_content(inputs) if hasattr(model, 'with_content') else inputs
  users, offsets = model.ranking_user(inputs)
  movies, biases = model.ranking_movies(inputs)
  return (offsets + tf.reduce_sum(users * movies, axis=-1) + biases).numpy()


def test_rows_of_new_tokens_keep_their_initial_values():
  new, old = warm_start.moved_rows([b'a', b'b'], [b'c', b'b', b'a'], first=1, old_rows=4,
                                   new_rows=5)
  # padding 0 -> 0, 'b' 2 -> 2, 'a' 1 -> 3, OOV 3 -> 4; 'c' (row 1) is new
  assert dict(zip(new.tolist(), old.tolist())) == {0: 0, 2: 2, 3: 1, 4: 3}


@pytest.mark.parametrize('name', ['cf', 'cb'])
def test_a_base_trained_on_other_ratings_is_refused_and_nothing_is_set(name, tmp_path):
  base, examples, _ = tm._train(name, epochs=1)
  _save(base, str(tmp_path))
  moved = _reordered_examples(examples)
  model = _built(name, moved, True)
  weights = [w.numpy().copy() for w in model.trainable_weights]
  fewer = (moved.features[f.USER_INDEX][1:], moved.features[f.MOVIE_INDEX][1:])
  with pytest.raises(warm_start.Unsuitable, match="not among this run's training ratings"):
    warm_start.warm_start(model, str(tmp_path), _new_vocabulary, fewer)
  for before, after in zip(weights, model.trainable_weights):
    np.testing.assert_array_equal(before, after.numpy())


def test_a_base_of_other_shapes_is_refused(tmp_path):
  base, examples, _ = tm._train('cf', epochs=1)
  _save(base, str(tmp_path))
  moved = _reordered_examples(examples)
  wider = tm._build('cf', moved)
  wider = type(wider)(tm.NUM_USERS, tm.NUM_MOVIES, embedding_dim=6, l2=1e-4, global_mean=3.0,
                      seed=7, retrieval_dim=3,
                      history=(moved.features[f.USER_INDEX], moved.features[f.MOVIE_INDEX]))
  wider.build_weights({k: v[:1] for k, v in moved.features.items()})
  with pytest.raises(warm_start.Unsuitable, match='user_embedding/embeddings'):
    warm_start.warm_start(wider, str(tmp_path), _new_vocabulary, _pairs(moved))


def test_a_base_trained_on_these_very_ratings_is_refused(tmp_path):
  """No new span: starting from the served model would only train it on, run after run."""
  base, examples, _ = tm._train('cf', epochs=1)
  _save(base, str(tmp_path))
  moved = _reordered_examples(examples)
  with pytest.raises(warm_start.Unsuitable, match='these very ratings'):
    warm_start.warm_start(_built('cf', moved, True), str(tmp_path), _new_vocabulary,
                          _pairs(moved, new_ratings=0))


def test_the_trainer_trains_from_scratch_where_the_base_does_not_fit(tmp_path, capsys):
  from components.models import trainer  # noqa: PLC0415  (imports TFT)
  base, examples, _ = tm._train('cf', epochs=1)
  _save(base, str(tmp_path))
  moved = _reordered_examples(examples)
  fewer = model_io.Examples({k: v[1:] for k, v in moved.features.items()}, moved.labels[1:])
  model = tm._build('cf', fewer)
  transform_output = type('TransformOutput', (), {
      'vocabulary_by_name': staticmethod(_new_vocabulary)})()
  report = trainer._warm_start(model, transform_output, fewer, dict(fewer.features),
                               str(tmp_path))
  assert report == {'skipped': "the base model was trained on ratings that are not among this "
                               "run's training ratings (another split, a later span or a "
                               "dropped one)", 'base_model': str(tmp_path)}
  assert 'training from scratch' in capsys.readouterr().out
