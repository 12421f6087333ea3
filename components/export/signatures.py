"""The TF Serving contract of both models: its eight signatures over the whole movie catalogue.

- `serving_default`: serialized tf.Example (raw features, no label) -> `rating`.
- `regress`: the same as TF Serving's Regress API wants it (input `inputs`, output `outputs`,
  method name `tensorflow/serving/regress`), for the REST `:regress` and gRPC `Regress` calls.
- `predict_rating`: `user_id`, `movie_id` [B] strings (plus, for `content_based` with
  demographics, `age` int64 and `gender`, `occupation`, `zip_code` strings) -> `rating` [B].
- `recommend`: `user_id` [B], `k` [B] int32, `exclude_movie_ids` [B, E] strings ('' pads), and
  the same user features as `predict_rating` -> `movie_ids`, `titles`, `scores` [B, max(k)],
  best first by the model's ranking head. A score is the log-probability that the user's next
  pick is that movie, among the movies the row could be recommended (the softmax of the
  head's logits over them, as in training; <= 0, finite); for a new user of
  `collaborative_filtering` who sends no ratings (the popularity fallback), the log of the
  movie's share of the training ratings among them. A `content_based` model trained without
  its ranking head (`retrieval_weight` 0) ranks by predicted rating, and its scores are those
  ratings, clipped to the scale. Blank entries (past a row's k) score 0. Movies the user
  rated in training are never recommended; ids in `exclude_movie_ids` are excluded too.
  `content_based` recommends movies without training ratings too, scored from their content;
  `collaborative_filtering` never recommends them (it knows nothing of them).
- `recommend_new_user`: `recommend` for users with no training ratings (user_id ''), from
  `rated_movie_ids` [B, H] strings ('' pads) and `rated_ratings` [B, H] floats, the movies they
  rated (their first ratings, sent with the request) and, for `content_based`, the same user
  features as `predict_rating`. `content_based` scores them as `recommend` does;
  `collaborative_filtering` folds them in (components/models/collaborative_filtering.py): no
  retraining. A row that sends no rated movie it knows gets the most rated movies from
  `collaborative_filtering`. Sent movies are never recommended back. It is a signature of its
  own so that `collaborative_filtering`'s `recommend` keeps its three inputs.
- `predict_rating_new_user`: `predict_rating` for users with no training ratings: `movie_id`
  [B] and the inputs `recommend_new_user` takes besides `k` and `exclude_movie_ids` -> `rating`
  [B]. `collaborative_filtering` rates from the same fold-in (a row that sends no movie it
  knows is rated as the average user); `content_based` as `predict_rating` with user_id ''.
- Every signature that takes named inputs refuses inputs of different numbers of rows
  (InvalidArgument naming them) instead of broadcasting one over the others.
- `similar_movies`: `movie_id` [B], `k` [B] int32 -> the `k` nearest movies by cosine similarity
  of the model's movie ranking vectors, with titles.

User features in a request (`age` >= 0, non-empty strings) override those stored for the user
in training; send -1 / '' to use the stored ones. `content_based` also takes `rated_movie_ids`
[B, H] strings ('' pads) and `rated_ratings` [B, H] floats in `predict_rating` and `recommend`:
a row that sends rated movies is scored from that rating profile instead of the stored training
ratings (a new user's first ratings, no retraining); send [['']] and [[0]] to use the stored
one. An unknown movie id or a rating off the scale there is an InvalidArgument error.
New users: `recommend` answers user_id '' (and, for `content_based`, any user_id sent with
demographics or rated movies) from the request's features (`content_based`; missing ones take
the most common training value) or with the most rated movies (`collaborative_filtering`;
scores are then log popularity shares, above; `recommend_new_user` reads their ratings); any
other user_id unknown to training is an InvalidArgument error, so a mistyped id is not
answered with someone else's list. `predict_rating` rates every
pair, unknown users and movies from the model's out-of-vocabulary rows: rating-prediction
protocols score every test pair, including those of users or movies new to training. For
TFMA, `transformed_features` maps serialized ratings to the slice features of
components/evaluation/slicing.py (not a client API). Every
signature uses core TensorFlow ops only; the catalogue, the per-user training history and the
movie vectors are saved inside the SavedModel.
"""

import csv
import dataclasses
import io
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import fingerprinting_utils


from components import atomic_files
from components.models import fast_tracing
from components.data import features as f
from components.models import model_io
from components.evaluation import ranking_metrics
from components.evaluation import slicing
from components.export import warmup

RATING = 'rating'
REGRESS = 'regress'
REGRESS_METHOD = tf.saved_model.REGRESS_METHOD_NAME  # 'tensorflow/serving/regress'
RATED_MOVIE_IDS, RATED_RATINGS = 'rated_movie_ids', 'rated_ratings'
MOVIE_IDS, TITLES, SCORES = 'movie_ids', 'titles', 'scores'
# No quotes in it: tf.debugging.Assert escapes them in the error message.
UNKNOWN_USER_MESSAGE = ('unknown user_id (no ratings in training): for a new user, send an '
                        'empty user_id')

# Request user features: raw input name -> (transformed name, dtype, "not given" value).
_USER_REQUEST_FEATURES = {
    f.AGE: (f.AGE_BUCKET, tf.int64, -1),
    f.GENDER: (f.GENDER_ID, tf.string, ''),
    f.OCCUPATION: (f.OCCUPATION_ID, tf.string, ''),
    f.ZIP_CODE: (f.ZIP_PREFIX_ID, tf.string, ''),
}


@dataclasses.dataclass
class Catalogue:
  """Every movie of the dataset (not only those of one split), as ingestion wrote it."""
  movie_ids: List[str]
  titles: List[str]
  release_years: List[int]
  genres: List[str]

  @classmethod
  def load(cls, path: str) -> 'Catalogue':
    with tf.io.gfile.GFile(path, 'r') as handle:
      rows = list(csv.DictReader(io.StringIO(handle.read())))
    if not rows:
      raise ValueError(f'{path}: the movie catalogue is empty')
    return cls([r[f.MOVIE_ID] for r in rows], [r[f.TITLE] for r in rows],
               [int(r[f.RELEASE_YEAR]) for r in rows], [r[f.GENRES] for r in rows])

  def __len__(self) -> int:
    return len(self.movie_ids)

  def raw_features(self) -> Dict[str, tf.Tensor]:
    column = lambda values, dtype: tf.constant(values, dtype)[:, tf.newaxis]
    return {f.MOVIE_ID: column(self.movie_ids, tf.string), f.TITLE: column(self.titles, tf.string),
            f.RELEASE_YEAR: column(self.release_years, tf.int64),
            f.GENRES: column(self.genres, tf.string)}


def _mode(values: np.ndarray):
  unique, counts = np.unique(values, return_counts=True)
  return unique[np.argmax(counts)]


class ServingTables(tf.Module):
  """Everything the signatures look up, computed once at export and saved with the model."""

  def __init__(self, model: tf.keras.Model, tft_output: tft.TFTransformOutput,
               catalogue: Catalogue, train: model_io.Examples):
    super().__init__(name='serving_tables')
    num_users = model_io.vocabulary_size(tft_output, f.USER_VOCAB)
    num_movies = model_io.vocabulary_size(tft_output, f.MOVIE_VOCAB)
    self.unknown_user = tf.constant(num_users - 1, tf.int64)
    # user_id -> user index, as Transform's vocabulary maps it (unknown: the OOV bucket), for
    # requests that send no user features: one lookup instead of the whole Transform graph.
    user_ids = tf.constant(tft_output.vocabulary_by_name(f.USER_VOCAB))
    self.user_index = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(user_ids, tf.range(num_users - 1, dtype=tf.int64)),
        default_value=num_users - 1)
    probe = tf.concat([user_ids, [b'\x00not-a-user']], axis=0)
    by_transform = tft_output.transform_features_layer()({f.USER_ID: probe[:, tf.newaxis]})
    if not np.array_equal(self.user_index.lookup(probe).numpy(),
                          by_transform[f.USER_INDEX].numpy()):
      raise ValueError('the user_id lookup table disagrees with the Transform graph')
    size = len(catalogue)

    # Catalogue movies through the Transform graph (movie inputs only: TFT prunes the rest),
    # plus one last row standing for a movie id the catalogue does not have.
    movies = {name: value.numpy() for name, value in
              tft_output.transform_features_layer()(catalogue.raw_features()).items()}
    unknown = {f.MOVIE_INDEX: num_movies - 1}
    movie_inputs = {name: np.concatenate([movies[name], np.full((1,) + movies[name].shape[1:],
                                                                unknown.get(name, 0))])
                    for name in model.movie_feature_names}
    self.movie_inputs = {name: tf.Variable(v, trainable=False, name=name)
                         for name, v in movie_inputs.items()}
    self.movie_ids = tf.Variable(catalogue.movie_ids, trainable=False, name='movie_ids')
    self.titles = tf.Variable(catalogue.titles, trainable=False, name='titles')
    self.position = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(catalogue.movie_ids),
                                            tf.range(size, dtype=tf.int64)), default_value=-1)

    vectors, biases = model.ranking_movies(
        {name: tf.constant(v[:size]) for name, v in movie_inputs.items()})
    self.movie_vectors = tf.Variable(vectors, trainable=False, name='movie_vectors')
    self.movie_biases = tf.Variable(biases, trainable=False, name='movie_biases')
    # A movie without an ID embedding (never rated in training) has nothing for a pure
    # collaborative model to go on: it is not recommended by such a model.
    known = movies[f.MOVIE_INDEX] < num_movies - 1
    if model.popularity_for_unknown_users:
      recommendable = known
    else:
      recommendable = np.ones(size, dtype=bool)
    self.recommendable = tf.Variable(recommendable, trainable=False, name='recommendable')

    # Per user index: the catalogue positions rated in training (never recommended again),
    # the user's transformed features, and popularity for the unknown-user fallback.
    position_of_index = np.full(num_movies, -1, np.int64)
    position_of_index[movies[f.MOVIE_INDEX][known]] = np.nonzero(known)[0]
    users = train.features[f.USER_INDEX]
    rated = position_of_index[train.features[f.MOVIE_INDEX]]
    order = np.argsort(users, kind='stable')
    self.seen_positions = tf.Variable(rated[order], trainable=False, name='seen_positions')
    self.seen_splits = tf.Variable(
        np.concatenate([[0], np.cumsum(np.bincount(users, minlength=num_users))]).astype(np.int64),
        trainable=False, name='seen_splits')
    self.popularity = tf.Variable(
        np.bincount(rated[rated >= 0], minlength=size).astype(np.float32), trainable=False,
        name='popularity')
    first_users, first_rows = np.unique(users, return_index=True)
    self.user_features = {}
    for name in model.user_feature_names:
      if name == f.USER_INDEX:
        table = np.arange(num_users, dtype=np.int64)
      else:
        values = train.features[name][first_rows]
        table = np.full(num_users, _mode(values), dtype=np.int64)
        table[first_users] = values
      self.user_features[name] = tf.Variable(table, trainable=False, name=f'user_{name}')
    # A model whose stored users' ranking vectors depend on the user index alone (no user
    # features) has them computed here for every user, so `recommend` only looks them up for
    # rows that send no ratings.
    self.user_ranking = None
    if tuple(model.user_feature_names) == (f.USER_INDEX,):
      vectors, offsets = model.ranking_user({f.USER_INDEX: tf.range(num_users, dtype=tf.int64)})
      self.user_ranking = (tf.Variable(vectors, trainable=False, name='user_ranking_vectors'),
                           tf.Variable(offsets, trainable=False, name='user_ranking_offsets'))


def _clip(rating, rating_range):
  return tf.clip_by_value(rating, rating_range[0], rating_range[1])


def _same_rows(request: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """`request` once every input has the same number of rows (dimension 0). Elementwise ops
  would broadcast a one-row input over the others and answer a mismatched request silently;
  this makes it an InvalidArgument error naming the inputs, under TF Serving as anywhere (its
  batching session refuses unequal rows the same way, but only where batching is on)."""
  names = sorted(request)
  rows = tf.stack([tf.shape(request[name], out_type=tf.int64)[0] for name in names])
  equal = tf.debugging.Assert(
      tf.reduce_all(tf.equal(rows, rows[0])),
      ['every input must have the same number of rows (dimension 0); the inputs '
       + ', '.join(names) + ' have', rows], summarize=len(names))
  with tf.control_dependencies([equal]):
    return {name: tf.identity(value) for name, value in request.items()}


def _new_users(request: Dict[str, tf.Tensor], rows_of: str) -> Dict[str, tf.Tensor]:
  """A `*_new_user` request as its general signature's: user_id '' on every row of `rows_of`."""
  return {**request, f.USER_ID: tf.fill(tf.shape(request[rows_of]), '')}


def _log_share(scores: tf.Tensor, excluded: tf.Tensor) -> tf.Tensor:
  """[B, M] ranking scores as log-probabilities over each row's candidates (the movies not
  `excluded`): the softmax the ranking head was trained with, so a score says how likely the
  user's next pick is that movie, comparable across users and models."""
  return tf.nn.log_softmax(tf.where(excluded, tf.float32.min, scores), axis=1)


class ServingSignatures(tf.Module):
  """The eight signatures of the module docstring, one method each, over `model` and the
  `ServingTables` computed for it at export.

  Each public method is the body of the signature of its name; `signatures()` traces them with
  their input specs for `model.save`, and a test can call any one alone on tensors. The private
  methods are the parts they share: the request's users, the catalogue masks and the top k.
  """

  def __init__(self, model: tf.keras.Model, tft_output: tft.TFTransformOutput,
               rating_range: Tuple[float, float], catalogue: Catalogue,
               train: model_io.Examples):
    super().__init__(name='serving_signatures')
    # Saved with the model (the signatures read them): the Transform graph and the tables.
    model.tft_layer = tft_output.transform_features_layer()
    model.serving_tables = ServingTables(model, tft_output, catalogue, train)
    self.model, self.tables, self.rating_range = model, model.serving_tables, rating_range
    self.raw_spec = tft_output.raw_feature_spec()
    self.raw_spec.pop(f.LABEL, None)
    self.size = len(catalogue)
    self.trained_movies = int(np.sum(self.tables.popularity.numpy() > 0))
    self.list_length = min(ranking_metrics.MAX_K, self.size)
    self.age_groups = tf.constant(slicing.age_group_names())
    # The request's user inputs of predict_rating and recommend: the demographics the model
    # reads and, for a model scored from a rating profile, the rated movies.
    self.user_specs = {name: tf.TensorSpec([None], _USER_REQUEST_FEATURES[name][1], name=name)
                       for name in _USER_REQUEST_FEATURES
                       if _USER_REQUEST_FEATURES[name][0] in model.user_feature_names}
    rated = {RATED_MOVIE_IDS: tf.TensorSpec([None, None], tf.string, name=RATED_MOVIE_IDS),
             RATED_RATINGS: tf.TensorSpec([None, None], tf.float32, name=RATED_RATINGS)}
    # recommend_new_user's and predict_rating_new_user's: the demographics and the rated
    # movies, whatever the model.
    self.new_user_specs = {**self.user_specs, **rated}
    if model.takes_profile:
      self.user_specs.update(rated)

  def input_signatures(self) -> Dict[str, list]:
    """Each signature's inputs: names, dtypes, shapes (the served contract)."""
    examples = lambda name: [tf.TensorSpec([None], tf.string, name=name)]
    ids = lambda name: tf.TensorSpec([None], tf.string, name=name)
    k = tf.TensorSpec([None], tf.int32, name='k')
    return {
        slicing.SIGNATURE: examples('examples'),
        'serving_default': examples('examples'),
        REGRESS: examples('inputs'),
        'predict_rating': [dict(user_id=ids(f.USER_ID), movie_id=ids(f.MOVIE_ID),
                                **self.user_specs)],
        'recommend': [dict(user_id=ids(f.USER_ID), k=k,
                           exclude_movie_ids=tf.TensorSpec([None, None], tf.string,
                                                           name='exclude_movie_ids'),
                           **self.user_specs)],
        'recommend_new_user': [dict(k=k, exclude_movie_ids=tf.TensorSpec(
            [None, None], tf.string, name='exclude_movie_ids'), **self.new_user_specs)],
        'predict_rating_new_user': [dict(movie_id=ids(f.MOVIE_ID), **self.new_user_specs)],
        'similar_movies': [dict(movie_id=ids(f.MOVIE_ID), k=k)],
    }

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    """Every signature traced for its inputs, by name, for `model.save`."""
    # Traced as plain Python: the methods branch on Python values only, and AutoGraph would
    # rewrite them, and tf_keras' layers, on every export (components/models/fast_tracing.py).
    return {name: tf.function(getattr(self, name), input_signature=spec,
                              autograph=False).get_concrete_function()
            for name, spec in self.input_signatures().items()}

  # The signatures.

  def serving_default(self, examples):
    return {RATING: self._rate_examples(examples)}

  def regress(self, inputs):
    return {'outputs': self._rate_examples(inputs)}

  def predict_rating(self, request):
    request = _same_rows(request)
    user_id, movie_id = request.pop(f.USER_ID), request.pop(f.MOVIE_ID)
    _, user_inputs = self._user_inputs_of(user_id, request)
    position = self.tables.position.lookup(movie_id)
    position = tf.where(position < 0, tf.cast(self.size, tf.int64), position)  # the unknown row
    rating = self.model({**user_inputs, **self._movies_by_position(position)}, training=False)
    return {RATING: _clip(rating, self.rating_range)}

  def recommend(self, request):
    request = _same_rows(request)
    user_id, k = request.pop(f.USER_ID), request.pop('k')
    exclude = request.pop('exclude_movie_ids')
    if RATED_MOVIE_IDS in request:  # movies a user says they rated are not recommended either
      exclude = tf.concat([exclude, request[RATED_MOVIE_IDS]], axis=1)
    index, user_inputs = self._user_inputs_of(user_id, request)
    known = tf.debugging.Assert(
        tf.reduce_all(tf.not_equal(index, self.tables.unknown_user)
                      | self._described(user_id, request)),
        [UNKNOWN_USER_MESSAGE + (' or describe the user (demographics, rated_movie_ids)'
                                 if request else '')])
    with tf.control_dependencies([known]):  # before any score is computed for a typo'd id
      index = tf.identity(index)
    return self._recommendations(index, user_inputs, k,
                                 self._ids_mask(tf.shape(user_id)[0], exclude))

  def recommend_new_user(self, request):
    return self.recommend(_new_users(request, 'k'))

  def predict_rating_new_user(self, request):
    return self.predict_rating(_new_users(request, f.MOVIE_ID))

  def similar_movies(self, request):
    request = _same_rows(request)
    tables = self.tables
    position = tables.position.lookup(request[f.MOVIE_ID])
    known = tf.debugging.assert_non_negative(position,
                                             message='unknown movie_id (not in the catalogue)')
    with tf.control_dependencies([known]):  # before any lookup, which would fail less clearly
      position = tf.identity(position)
    embedded = tf.debugging.Assert(
        tf.reduce_all(tf.gather(tables.recommendable, position)),
        ['movie_id has no embedding in this model (not rated in training)'])
    with tf.control_dependencies([embedded]):
      position = tf.identity(position)
    unit = tf.math.l2_normalize(tables.movie_vectors, axis=1)
    similarity = tf.matmul(tf.gather(unit, position), unit, transpose_b=True)
    itself = tf.one_hot(position, self.size, on_value=True, off_value=False)
    return self._top_k(similarity, request['k'], itself | ~tables.recommendable[tf.newaxis, :])

  def transformed_features(self, examples):
    """The slice features of serialized ratings (components/evaluation/slicing.py) and their
    users' ranked lists (`_ranked_lists`), for TFMA."""
    tables = self.tables
    raw = tf.io.parse_example(examples, self.raw_spec)
    transformed = self.model.tft_layer(raw)
    position = tables.position.lookup(tf.reshape(raw[f.MOVIE_ID], [-1]))
    movie_counts = tf.where(position >= 0, tf.gather(tables.popularity, tf.maximum(position, 0)),
                            0.0)
    user_index = transformed[f.USER_INDEX]  # a user's training ratings: seen_splits' steps
    user_counts = (tf.gather(tables.seen_splits, user_index + 1)
                   - tf.gather(tables.seen_splits, user_index))
    result = {
        slicing.GENRE: slicing.genres_of(tf.reshape(raw[f.GENRES], [-1])),
        slicing.USER_ACTIVITY: slicing.bucket_names(user_counts, slicing.USER_ACTIVITY_BUCKETS),
        slicing.MOVIE_POPULARITY: slicing.bucket_names(tf.cast(movie_counts, tf.int64),
                                                       slicing.MOVIE_POPULARITY_BUCKETS),
    }
    if f.AGE_BUCKET in transformed:
      result[slicing.AGE_GROUP] = tf.gather(self.age_groups, transformed[f.AGE_BUCKET])
    result.update(self._ranked_lists(tf.reshape(raw[f.USER_ID], [-1])))
    return result

  # What the signatures share.

  def _rate_examples(self, examples):
    raw = tf.io.parse_example(examples, self.raw_spec)
    return _clip(self.model(self.model.tft_layer(raw), training=False), self.rating_range)

  def _users(self, user_id, features):
    """Transformed user features of a request: stored ones, overridden where given."""
    model, tables = self.model, self.tables
    if not features:
      index = tables.user_index.lookup(user_id)
      return index, {name: tf.gather(tables.user_features[name], index)
                     for name in model.user_feature_names}
    raw = {f.USER_ID: user_id, **features}
    transformed = model.tft_layer({k: v[:, tf.newaxis] for k, v in raw.items()})
    index = transformed[f.USER_INDEX]
    inputs = {}
    for name in model.user_feature_names:
      inputs[name] = tf.gather(tables.user_features[name], index)
    for raw_name, value in features.items():
      name, _, missing = _USER_REQUEST_FEATURES[raw_name]
      given = value > missing if value.dtype == tf.int64 else tf.not_equal(value, missing)
      inputs[name] = tf.where(given, tf.cast(transformed[name], tf.int64), inputs[name])
    return index, inputs

  def _movies_by_position(self, position):
    return {name: tf.gather(table, position) for name, table in self.tables.movie_inputs.items()}

  def _request_profile(self, rated_movie_ids, rated_ratings):
    """The rating profile inputs of the rows that send rated movies ('' pads)."""
    model, low, high = self.model, self.rating_range[0], self.rating_range[1]
    given = tf.not_equal(rated_movie_ids, '')
    ids = tf.ragged.boolean_mask(rated_movie_ids, given)
    ratings = tf.ragged.boolean_mask(rated_ratings, given)
    position = self.tables.position.lookup(ids.flat_values)
    checks = [
        tf.debugging.assert_non_negative(
            position, message='unknown movie_id in rated_movie_ids (not in the catalogue)'),
        tf.debugging.assert_greater_equal(ratings.flat_values, low,
                                          message='rated_ratings below the rating scale'),
        tf.debugging.assert_less_equal(ratings.flat_values, high,
                                       message='rated_ratings above the rating scale')]
    with tf.control_dependencies(checks):  # before the lookups, which fail less clearly
      position = tf.identity(position)
    return model.profile_inputs(self._movies_by_position(position), ratings)

  def _user_inputs_of(self, user_id, request):
    """(user index, model inputs) of a request's users: stored, overridden by the request."""
    request = dict(request)
    profile = {}
    if RATED_MOVIE_IDS in request:
      profile = self._request_profile(request.pop(RATED_MOVIE_IDS), request.pop(RATED_RATINGS))
    index, inputs = self._users(user_id, request)
    return index, {**inputs, **profile}

  def _described(self, user_id, request):
    """[B]: rows that ask for a new user's recommendations: user_id '' or user features given."""
    given = tf.equal(user_id, '')
    for name, value in request.items():
      if name == RATED_MOVIE_IDS:
        given |= tf.reduce_any(tf.not_equal(value, ''), axis=1)
      elif name in _USER_REQUEST_FEATURES:
        missing = _USER_REQUEST_FEATURES[name][2]
        given |= value > missing if value.dtype == tf.int64 else tf.not_equal(value, missing)
    return given

  def _top_k(self, scores, k, excluded):
    """Best-first top max(k) of [B, M] scores; entries past a row's k, or excluded, are blank."""
    size = self.size
    checks = [tf.debugging.assert_greater(k, 0, message='k must be at least 1'),
              tf.debugging.assert_less_equal(k, size,
                                             message=f'k must be at most {size} (the catalogue)')]
    with tf.control_dependencies(checks):  # before top_k, which fails less clearly
      k = tf.identity(k)
    lowest = tf.float32.min
    scores = tf.where(excluded, lowest, scores)
    best, position = tf.math.top_k(scores, k=tf.reduce_max(k))
    valid = (tf.range(tf.shape(best)[1])[tf.newaxis, :] < k[:, tf.newaxis]) & (best > lowest)
    blank = lambda values, empty: tf.where(valid, values, empty)
    return {MOVIE_IDS: blank(tf.gather(self.tables.movie_ids, position), ''),
            TITLES: blank(tf.gather(self.tables.titles, position), ''),
            SCORES: blank(best, 0.0)}

  def _mask_of(self, batch, rows, positions):
    """[B, M] boolean mask, True at (rows[i], positions[i]); positions < 0 are ignored."""
    keep = positions >= 0
    indices = tf.stack([tf.boolean_mask(rows, keep), tf.boolean_mask(positions, keep)], axis=1)
    return tf.scatter_nd(indices, tf.ones_like(indices[:, 0], tf.int32),
                         tf.stack([tf.cast(batch, tf.int64),
                                   tf.constant(self.size, tf.int64)])) > 0

  def _seen_mask(self, batch, index):
    """[B, M]: the catalogue positions each row's user rated in training."""
    tables = self.tables
    ranges = tf.ragged.range(tf.gather(tables.seen_splits, index),
                             tf.gather(tables.seen_splits, index + 1))
    flat = ranges.flat_values
    rows = tf.searchsorted(ranges.row_splits[1:], tf.range(tf.size(flat, out_type=tf.int64)),
                           side='right', out_type=tf.int64)
    return self._mask_of(batch, rows, tf.gather(tables.seen_positions, flat))

  def _ids_mask(self, batch, ids):
    """[B, M]: the catalogue positions of [B, E] movie ids ('' and unknown ids are ignored)."""
    positions = self.tables.position.lookup(ids)
    rows = tf.broadcast_to(tf.range(tf.cast(batch, tf.int64))[:, tf.newaxis],
                           tf.shape(positions, out_type=tf.int64))
    return self._mask_of(batch, tf.reshape(rows, [-1]), tf.reshape(positions, [-1]))

  def _recommendations(self, index, user_inputs, k, excluded):
    """`recommend`'s answer for users [B] (index, model inputs), `excluded` [B, M] besides
    their training movies and what the model cannot recommend."""
    model, tables = self.model, self.tables
    profile = user_inputs.get(model.HAS_PROFILE)  # rows described by the ratings they send
    if tables.user_ranking is not None and profile is None:  # computed at export
      vectors, offsets = (tf.gather(t, index) for t in tables.user_ranking)
    else:
      vectors, offsets = model.ranking_user(user_inputs)
    scores = (offsets[:, tf.newaxis] + tables.movie_biases[tf.newaxis, :]
              + tf.matmul(vectors, tables.movie_vectors, transpose_b=True))
    if model.popularity_for_unknown_users:  # a movie's share of the training ratings
      unknown = tf.equal(index, tables.unknown_user)
      if profile is not None:
        unknown &= ~profile
      scores = tf.where(unknown[:, tf.newaxis], tf.math.log1p(tables.popularity)[tf.newaxis, :],
                        scores)
    excluded |= self._seen_mask(tf.shape(index)[0], index) | ~tables.recommendable[tf.newaxis, :]
    if model.ranks_by_rating:  # ordered by the predicted rating, which stays on the scale
      best = self._top_k(scores, k, excluded)
      best[SCORES] = tf.where(tf.equal(best[MOVIE_IDS], ''), 0.0,
                              _clip(best[SCORES], self.rating_range))
      return best
    return self._top_k(_log_share(scores, excluded), k, excluded)

  def _ranked_lists(self, user_id):
    """Per rating [B]: its user's top `MAX_K` of `recommend` (stored features and profile) and
    of most-popular, among the movies the user did not rate in training, as space-separated
    movie IDs, for the Evaluator's ranking metrics (components/evaluation/ranking_metrics.py).

    Computed once per distinct user of the batch and given to each of their ratings: a user
    has many eval ratings, and each list scores the whole catalogue."""
    users, row = tf.unique(user_id)
    return {name: tf.gather(lists, row) for name, lists in self._users_lists(users).items()}

  def _users_lists(self, user_id):
    """`_ranked_lists` of distinct users [U]."""
    tables = self.tables
    index, user_inputs = self._users(user_id, {})
    batch = tf.shape(user_id)[0]
    k = tf.fill([batch], self.list_length)
    nothing = tf.zeros([batch, self.size], tf.bool)
    popular = self._top_k(
        tf.tile(tables.popularity[tf.newaxis, :], [batch, 1]), k,
        self._seen_mask(batch, index) | tf.equal(tables.popularity, 0.0)[tf.newaxis, :])
    # One string per list (movie IDs are integers, so ' ' separates them): TopKRanking keeps
    # every user's two lists in each slice's accumulator, which Beam encodes between combine
    # steps; as 100 strings per user that took the ML-100K Evaluator from 20 s to 25-28 s.
    joined = lambda ids: tf.strings.strip(tf.strings.reduce_join(ids, axis=1, separator=' '))
    recommended = self._recommendations(index, user_inputs, k, nothing)[MOVIE_IDS]
    return {ranking_metrics.RECOMMENDED: joined(recommended),
            ranking_metrics.POPULAR: joined(popular[MOVIE_IDS]),
            ranking_metrics.TRAINED_MOVIES: tf.fill([batch], tf.constant(self.trained_movies,
                                                                         tf.int64))}


def export(model: tf.keras.Model, tft_output: tft.TFTransformOutput, export_dir: str,
           rating_range: Tuple[float, float], catalogue: Catalogue,
           train: model_io.Examples) -> 'ServingSignatures':
  """Saves `model` with the eight signatures of the module docstring, its warm-up requests, and
  `regress` marked as TF Serving's regress method; returns the signatures' module."""
  fast_tracing.skip_tf_keras()
  serving = ServingSignatures(model, tft_output, rating_range, catalogue, train)
  model.save(export_dir, save_format='tf', save_traces=False, signatures=serving.signatures())
  _mark_regression(export_dir, REGRESS)
  user_id = tft_output.vocabulary_by_name(f.USER_VOCAB)[0].decode()
  warmup.write(export_dir, _warmup_logs(export_dir, user_id, catalogue, serving.raw_spec))
  return serving


def _mark_regression(export_dir: str, signature_name: str) -> None:
  """Gives `signature_name` TF Serving's regress method name (TF 2 saves every one as predict)."""
  path = os.path.join(export_dir, 'saved_model.pb')
  saved_model = saved_model_pb2.SavedModel.FromString(tf.io.gfile.GFile(path, 'rb').read())
  saved_model.meta_graphs[0].signature_def[signature_name].method_name = REGRESS_METHOD
  atomic_files.write(path, saved_model.SerializeToString())
  fingerprinting_utils.write_fingerprint(export_dir)  # the fingerprint hashes saved_model.pb


def _warmup_logs(export_dir: str, user_id: str, catalogue: Catalogue, raw_spec) -> list:
  """One request per signature (batch of 2) with a trained user and a catalogue movie."""
  path = os.path.join(export_dir, 'saved_model.pb')
  saved_model = saved_model_pb2.SavedModel.FromString(tf.io.gfile.GFile(path, 'rb').read())
  known = {f.USER_ID: user_id, f.MOVIE_ID: catalogue.movie_ids[0], 'k': 10, f.AGE: -1,
           RATED_RATINGS: 0.0}
  example = tf.train.Example()
  for name, spec in raw_spec.items():
    feature = example.features.feature[name]
    if spec.dtype == tf.string:
      feature.bytes_list.value.append(str(known.get(name, '')).encode())
    elif spec.dtype == tf.int64:
      feature.int64_list.value.append(int(known.get(name, 0)))
    else:
      feature.float_list.value.append(float(known.get(name, 0.0)))
  logs = []
  for name, signature in sorted(saved_model.meta_graphs[0].signature_def.items()):
    if name.startswith('__'):  # __saved_model_init_op: not a signature clients call
      continue
    if signature.method_name == REGRESS_METHOD:
      logs.append(warmup.regress_log(name, [example, example]))
      continue
    inputs = {}
    for key, info in signature.inputs.items():
      dtype = tf.dtypes.as_dtype(info.dtype).as_numpy_dtype
      rank = len(info.tensor_shape.dim)
      if info.dtype == tf.string.as_datatype_enum:
        value = example.SerializeToString() if key in ('examples', 'inputs') else known.get(key, '')
        dtype = object
      else:
        value = known.get(key, 0)
      for _ in range(rank - 1):
        value = [value]
      # Not np.full: it would pass bytes through a fixed-width array that drops trailing NULs.
      inputs[key] = np.array([value] * 2, dtype=dtype)
    logs.append(warmup.predict_log(name, inputs))
  return logs
