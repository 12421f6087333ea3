"""`collaborative_filtering`: biased matrix factorisation over user and movie ID embeddings.

rating(u, m) = global + b_u + b_m + <p_u, q_m>, trained on squared error with L2 on the
embeddings and biases. IDs unseen in training map to the OOV row, so they never fail; for
recommendations an unseen user falls back to popularity (see components/signatures.py).
"""

import tensorflow as tf

from components import features


class CollaborativeFilteringModel(tf.keras.Model):
  """Predicts a rating [B] from `user_index` and `movie_index` [B]."""

  user_feature_names = (features.USER_INDEX,)
  movie_feature_names = (features.MOVIE_INDEX,)
  popularity_for_unknown_users = True

  def __init__(self, num_users: int, num_movies: int, embedding_dim: int, l2: float,
               global_mean: float, seed: int, **kwargs):
    super().__init__(**kwargs)
    regularizer = tf.keras.regularizers.l2(l2)
    init = lambda offset: tf.keras.initializers.RandomNormal(stddev=0.05, seed=seed + offset)
    self.user_embedding = tf.keras.layers.Embedding(
        num_users, embedding_dim, embeddings_initializer=init(0),
        embeddings_regularizer=regularizer, name='user_embedding')
    self.movie_embedding = tf.keras.layers.Embedding(
        num_movies, embedding_dim, embeddings_initializer=init(1),
        embeddings_regularizer=regularizer, name='movie_embedding')
    self.user_bias = tf.keras.layers.Embedding(
        num_users, 1, embeddings_initializer='zeros', embeddings_regularizer=regularizer,
        name='user_bias')
    self.movie_bias = tf.keras.layers.Embedding(
        num_movies, 1, embeddings_initializer='zeros', embeddings_regularizer=regularizer,
        name='movie_bias')
    self.global_bias = tf.Variable(global_mean, dtype=tf.float32, name='global_bias')

  def user_representation(self, inputs):
    """(vector [B, D], bias [B]) of the users in `inputs`."""
    users = inputs[features.USER_INDEX]
    return self.user_embedding(users), tf.squeeze(self.user_bias(users), -1)

  def movie_representation(self, inputs):
    """(vector [M, D], bias [M]) of the movies in `inputs`."""
    movies = inputs[features.MOVIE_INDEX]
    return self.movie_embedding(movies), tf.squeeze(self.movie_bias(movies), -1)

  def call(self, inputs, training=False):
    user, user_bias = self.user_representation(inputs)
    movie, movie_bias = self.movie_representation(inputs)
    return self.global_bias + user_bias + movie_bias + tf.reduce_sum(user * movie, axis=-1)
