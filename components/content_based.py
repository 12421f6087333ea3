"""`content_based`: a two-tower model over user and movie content features.

The movie tower sees genres, title tokens, release decade and the movie ID embedding (the OOV
row for a movie unseen in training); the user tower sees age bucket, gender, occupation and zip
prefix, so a user never seen in training still gets a prediction from their features. Where a
dataset has no demographics (MovieLens latest) the user tower falls back to the user ID
embedding. rating = global + movie bias + user-feature bias + <user vector, movie vector>.
"""

from typing import Dict

import tensorflow as tf

from components import features as f


def _masked_mean(embedded: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
  """Mean of [B, L, D] over the non-padding (id > 0) positions -> [B, D]."""
  mask = tf.cast(ids > 0, embedded.dtype)[..., tf.newaxis]
  return tf.reduce_sum(embedded * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


class ContentBasedModel(tf.keras.Model):
  """Predicts a rating [B] from transformed content features."""

  movie_feature_names = (f.GENRE_IDS, f.TITLE_TOKEN_IDS, f.RELEASE_BUCKET, f.MOVIE_INDEX)
  popularity_for_unknown_users = False  # an unknown user is scored from their features

  def __init__(self, vocab_sizes: Dict[str, int], has_demographics: bool, embedding_dim: int,
               l2: float, global_mean: float, seed: int, **kwargs):
    super().__init__(**kwargs)
    self.has_demographics = has_demographics
    self.user_feature_names = ((f.AGE_BUCKET, f.GENDER_ID, f.OCCUPATION_ID, f.ZIP_PREFIX_ID)
                               if has_demographics else (f.USER_INDEX,))
    regularizer = tf.keras.regularizers.l2(l2)
    counter = iter(range(1000))

    def embedding(name, size, dim=embedding_dim):
      return tf.keras.layers.Embedding(
          size, dim, embeddings_regularizer=regularizer, name=name,
          embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.05,
                                                                    seed=seed + next(counter)))

    self.genre_embedding = embedding('genre_embedding', vocab_sizes[f.GENRE_IDS])
    self.title_embedding = embedding('title_embedding', vocab_sizes[f.TITLE_TOKEN_IDS])
    self.release_embedding = embedding('release_embedding', f.NUM_RELEASE_BUCKETS)
    self.movie_id_embedding = embedding('movie_id_embedding', vocab_sizes[f.MOVIE_INDEX])
    self.movie_bias = embedding('movie_bias', vocab_sizes[f.MOVIE_INDEX], dim=1)
    if has_demographics:
      self.user_feature_embeddings = {
          f.AGE_BUCKET: embedding('age_embedding', len(f.AGE_BOUNDARIES) + 1),
          f.GENDER_ID: embedding('gender_embedding', vocab_sizes[f.GENDER_ID]),
          f.OCCUPATION_ID: embedding('occupation_embedding', vocab_sizes[f.OCCUPATION_ID]),
          f.ZIP_PREFIX_ID: embedding('zip_embedding', vocab_sizes[f.ZIP_PREFIX_ID]),
      }
    else:
      self.user_feature_embeddings = {
          f.USER_INDEX: embedding('user_id_embedding', vocab_sizes[f.USER_INDEX])}
    dense = lambda name, units, activation=None: tf.keras.layers.Dense(
        units, activation=activation, kernel_regularizer=regularizer, name=name,
        kernel_initializer=tf.keras.initializers.GlorotUniform(seed=seed + next(counter)))
    self.user_tower = tf.keras.Sequential(
        [dense('user_hidden', 2 * embedding_dim, 'relu'), dense('user_vector', embedding_dim)])
    self.movie_tower = tf.keras.Sequential(
        [dense('movie_hidden', 2 * embedding_dim, 'relu'), dense('movie_vector', embedding_dim)])
    self.user_bias = dense('user_feature_bias', 1)
    self.global_bias = tf.Variable(global_mean, dtype=tf.float32, name='global_bias')

  def user_features(self, inputs) -> tf.Tensor:
    return tf.concat([layer(inputs[name]) for name, layer in
                      sorted(self.user_feature_embeddings.items())], axis=-1)

  def movie_features(self, inputs) -> tf.Tensor:
    return tf.concat([
        _masked_mean(self.genre_embedding(inputs[f.GENRE_IDS]), inputs[f.GENRE_IDS]),
        _masked_mean(self.title_embedding(inputs[f.TITLE_TOKEN_IDS]), inputs[f.TITLE_TOKEN_IDS]),
        self.release_embedding(inputs[f.RELEASE_BUCKET]),
        self.movie_id_embedding(inputs[f.MOVIE_INDEX]),
    ], axis=-1)

  def user_representation(self, inputs):
    """(vector [B, D], bias [B]) of the users described by `inputs`."""
    user_raw = self.user_features(inputs)
    return self.user_tower(user_raw), tf.squeeze(self.user_bias(user_raw), -1)

  def movie_representation(self, inputs):
    """(vector [M, D], bias [M]) of the movies described by `inputs`."""
    return (self.movie_tower(self.movie_features(inputs)),
            tf.squeeze(self.movie_bias(inputs[f.MOVIE_INDEX]), -1))

  def ranking_user(self, inputs):
    """Ranking is by predicted rating: (user vector [B, D], global + user bias [B])."""
    vector, bias = self.user_representation(inputs)
    return vector, self.global_bias + bias

  def ranking_movies(self, inputs):
    """(vector [M, D], bias [M]): with `ranking_user`, the predicted rating."""
    return self.movie_representation(inputs)

  def call(self, inputs, training=False):
    user, user_bias = self.user_representation(inputs)
    movie, movie_bias = self.movie_representation(inputs)
    return self.global_bias + user_bias + movie_bias + tf.reduce_sum(user * movie, axis=-1)
