"""The TF Serving contract of both models: four signatures over the whole movie catalogue.

- `serving_default`: serialized tf.Example (raw features, no label) -> `rating`.
- `predict_rating`: `user_id`, `movie_id` [B] strings (plus, for `content_based` with
  demographics, `age` int64 and `gender`, `occupation`, `zip_code` strings) -> `rating` [B].
- `recommend`: `user_id` [B], `k` [B] int32, `exclude_movie_ids` [B, E] strings ('' pads), and
  the same user features as `predict_rating` -> `movie_ids`, `titles`, `scores` [B, max(k)],
  best first by the model's ranking score (`content_based`: the predicted rating;
  `collaborative_filtering`: its ranking head's logit, a log-probability of the user picking
  the movie up to a per-user constant). Movies the user rated in training are never recommended; ids in
  `exclude_movie_ids` are excluded too.
- `similar_movies`: `movie_id` [B], `k` [B] int32 -> the `k` nearest movies by cosine similarity
  of the model's movie ranking vectors, with titles.

User features in a request (`age` >= 0, non-empty strings) override those stored for the user
in training; send -1 / '' to use the stored ones. `content_based` also takes `rated_movie_ids`
[B, H] strings ('' pads) and `rated_ratings` [B, H] floats in `predict_rating` and `recommend`:
a row that sends rated movies is scored from that rating profile instead of the stored training
ratings (a new user's first ratings, no retraining); send [['']] and [[0]] to use the stored
one. An unknown movie id or a rating off the scale there is an InvalidArgument error. A user unknown to training is scored from the
request's features by `content_based` (missing ones take the most common training value) and,
for `collaborative_filtering`, gets the most rated movies (scores are then rating counts). For TFMA, `transformed_features` maps serialized
ratings to the slice features of components/slicing.py (not a client API). Every
signature uses core TensorFlow ops only; the catalogue, the per-user training history and the
movie vectors are saved inside the SavedModel.
"""

import csv
import dataclasses
import io
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components import features as f
from components import model_io
from components import slicing

RATING = 'rating'
RATED_MOVIE_IDS, RATED_RATINGS = 'rated_movie_ids', 'rated_ratings'
MOVIE_IDS, TITLES, SCORES = 'movie_ids', 'titles', 'scores'

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
    self.user_rating_counts = tf.Variable(np.bincount(users, minlength=num_users),
                                          trainable=False, name='user_rating_counts')
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


def _clip(rating, rating_range):
  return tf.clip_by_value(rating, rating_range[0], rating_range[1])


def export(model: tf.keras.Model, tft_output: tft.TFTransformOutput, export_dir: str,
           rating_range: Tuple[float, float], catalogue: Catalogue,
           train: model_io.Examples) -> None:
  """Saves `model` with the four signatures (see the module docstring)."""
  model.tft_layer = tft_output.transform_features_layer()
  model.serving_tables = tables = ServingTables(model, tft_output, catalogue, train)
  raw_spec = tft_output.raw_feature_spec()
  raw_spec.pop(f.LABEL, None)
  request_features = [name for name in _USER_REQUEST_FEATURES
                      if _USER_REQUEST_FEATURES[name][0] in model.user_feature_names]
  size = len(catalogue)

  def users(user_id, features):
    """Transformed user features of a request: stored ones, overridden where given."""
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

  def movies_by_position(position):
    return {name: tf.gather(table, position) for name, table in tables.movie_inputs.items()}

  def request_profile(rated_movie_ids, rated_ratings):
    """The rating profile inputs of the rows that send rated movies ('' pads)."""
    given = tf.not_equal(rated_movie_ids, '')
    ids = tf.ragged.boolean_mask(rated_movie_ids, given)
    ratings = tf.ragged.boolean_mask(rated_ratings, given)
    position = tables.position.lookup(ids.flat_values)
    tf.debugging.assert_non_negative(
        position, message='unknown movie_id in rated_movie_ids (not in the catalogue)')
    tf.debugging.assert_greater_equal(ratings.flat_values, rating_range[0],
                                      message='rated_ratings below the rating scale')
    tf.debugging.assert_less_equal(ratings.flat_values, rating_range[1],
                                   message='rated_ratings above the rating scale')
    offset, taste = model.profile(movies_by_position(position), ratings)
    return {model.PROFILE_OFFSET: offset, model.PROFILE_TASTE: taste,
            model.HAS_PROFILE: ids.row_lengths() > 0}

  def top_k(scores, k, excluded):
    """Best-first top max(k) of [B, M] scores; entries past a row's k, or excluded, are blank."""
    tf.debugging.assert_greater(k, 0, message='k must be at least 1')
    tf.debugging.assert_less_equal(k, size, message=f'k must be at most {size} (the catalogue)')
    lowest = tf.float32.min
    scores = tf.where(excluded, lowest, scores)
    best, position = tf.math.top_k(scores, k=tf.reduce_max(k))
    valid = (tf.range(tf.shape(best)[1])[tf.newaxis, :] < k[:, tf.newaxis]) & (best > lowest)
    blank = lambda values, empty: tf.where(valid, values, empty)
    return {MOVIE_IDS: blank(tf.gather(tables.movie_ids, position), ''),
            TITLES: blank(tf.gather(tables.titles, position), ''),
            SCORES: blank(best, 0.0)}

  def mask_of(batch, positions):
    """[B, M] boolean mask from a ragged [B, None] of catalogue positions (-1 is ignored)."""
    keep = positions.flat_values >= 0
    rows = tf.boolean_mask(positions.value_rowids(), keep)
    cols = tf.boolean_mask(positions.flat_values, keep)
    return tf.scatter_nd(tf.stack([rows, cols], axis=1), tf.ones_like(cols, tf.int32),
                         tf.stack([tf.cast(batch, tf.int64), tf.constant(size, tf.int64)])) > 0

  user_specs = {name: tf.TensorSpec([None], _USER_REQUEST_FEATURES[name][1], name=name)
                for name in request_features}
  takes_profile = hasattr(model, 'profile')
  if takes_profile:
    user_specs[RATED_MOVIE_IDS] = tf.TensorSpec([None, None], tf.string, name=RATED_MOVIE_IDS)
    user_specs[RATED_RATINGS] = tf.TensorSpec([None, None], tf.float32, name=RATED_RATINGS)

  def user_inputs_of(user_id, request):
    """(user index, model inputs) of a request's users: stored, overridden by the request."""
    request = dict(request)
    profile = {}
    if takes_profile:
      profile = request_profile(request.pop(RATED_MOVIE_IDS), request.pop(RATED_RATINGS))
    index, inputs = users(user_id, request)
    return index, {**inputs, **profile}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serving_default(examples):
    raw = tf.io.parse_example(examples, raw_spec)
    return {RATING: _clip(model(model.tft_layer(raw), training=False), rating_range)}

  @tf.function(input_signature=[dict(user_id=tf.TensorSpec([None], tf.string, name='user_id'),
                                     movie_id=tf.TensorSpec([None], tf.string, name='movie_id'),
                                     **user_specs)])
  def predict_rating(request):
    request = dict(request)
    user_id, movie_id = request.pop(f.USER_ID), request.pop(f.MOVIE_ID)
    _, user_inputs = user_inputs_of(user_id, request)
    position = tables.position.lookup(movie_id)
    position = tf.where(position < 0, tf.cast(size, tf.int64), position)  # the unknown row
    rating = model({**user_inputs, **movies_by_position(position)}, training=False)
    return {RATING: _clip(rating, rating_range)}

  @tf.function(input_signature=[dict(
      user_id=tf.TensorSpec([None], tf.string, name='user_id'),
      k=tf.TensorSpec([None], tf.int32, name='k'),
      exclude_movie_ids=tf.TensorSpec([None, None], tf.string, name='exclude_movie_ids'),
      **user_specs)])
  def recommend(request):
    request = dict(request)
    user_id, k = request.pop(f.USER_ID), request.pop('k')
    exclude = request.pop('exclude_movie_ids')
    if takes_profile:  # movies a new user says they rated are not recommended either
      exclude = tf.concat([exclude, request[RATED_MOVIE_IDS]], axis=1)
    index, user_inputs = user_inputs_of(user_id, request)
    vectors, offsets = model.ranking_user(user_inputs)
    scores = (offsets[:, tf.newaxis] + tables.movie_biases[tf.newaxis, :]
              + tf.matmul(vectors, tables.movie_vectors, transpose_b=True))
    if model.popularity_for_unknown_users:
      unknown = tf.equal(index, tables.unknown_user)[:, tf.newaxis]
      scores = tf.where(unknown, tables.popularity[tf.newaxis, :], scores)
    batch = tf.shape(user_id)[0]
    seen = tf.RaggedTensor.from_row_splits(tables.seen_positions, tables.seen_splits)
    excluded_ids = tf.ragged.boolean_mask(exclude, tf.not_equal(exclude, ''))
    excluded = (mask_of(batch, tf.gather(seen, index))
                | mask_of(batch, tf.ragged.map_flat_values(tables.position.lookup, excluded_ids))
                | ~tables.recommendable[tf.newaxis, :])
    return top_k(scores, k, excluded)

  @tf.function(input_signature=[dict(movie_id=tf.TensorSpec([None], tf.string, name='movie_id'),
                                     k=tf.TensorSpec([None], tf.int32, name='k'))])
  def similar_movies(request):
    position = tables.position.lookup(request[f.MOVIE_ID])
    tf.debugging.assert_non_negative(position, message='unknown movie_id (not in the catalogue)')
    tf.debugging.Assert(tf.reduce_all(tf.gather(tables.recommendable, position)),
                        ['movie_id has no embedding in this model (not rated in training)'])
    unit = tf.math.l2_normalize(tables.movie_vectors, axis=1)
    similarity = tf.matmul(tf.gather(unit, position), unit, transpose_b=True)
    itself = tf.one_hot(position, size, on_value=True, off_value=False)
    return top_k(similarity, request['k'], itself | ~tables.recommendable[tf.newaxis, :])

  age_groups = tf.constant(slicing.age_group_names())

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def transformed_features(examples):
    """The slice features of serialized ratings, for TFMA (see components/slicing.py)."""
    raw = tf.io.parse_example(examples, raw_spec)
    transformed = model.tft_layer(raw)
    position = tables.position.lookup(tf.reshape(raw[f.MOVIE_ID], [-1]))
    movie_counts = tf.where(position >= 0, tf.gather(tables.popularity, tf.maximum(position, 0)),
                            0.0)
    user_counts = tf.gather(tables.user_rating_counts, transformed[f.USER_INDEX])
    result = {
        slicing.GENRE: slicing.genres_of(tf.reshape(raw[f.GENRES], [-1])),
        slicing.USER_ACTIVITY: slicing.bucket_names(user_counts, slicing.USER_ACTIVITY_BUCKETS),
        slicing.MOVIE_POPULARITY: slicing.bucket_names(tf.cast(movie_counts, tf.int64),
                                                       slicing.MOVIE_POPULARITY_BUCKETS),
    }
    if f.AGE_BUCKET in transformed:
      result[slicing.AGE_GROUP] = tf.gather(age_groups, transformed[f.AGE_BUCKET])
    return result

  model.save(export_dir, save_format='tf', signatures={
      slicing.SIGNATURE: transformed_features,
      'serving_default': serving_default,
      'predict_rating': predict_rating.get_concrete_function(),
      'recommend': recommend.get_concrete_function(),
      'similar_movies': similar_movies.get_concrete_function(),
  })
