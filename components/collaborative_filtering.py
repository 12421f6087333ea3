"""`collaborative_filtering`: biased matrix factorisation over user and movie ID embeddings.

rating(u, m) = global + b_u + b_m + <p_u, q_m>, trained on squared error with L2 on the
embeddings and biases. IDs unseen in training map to the OOV row, so they never fail.
"""

import tensorflow as tf

from components import features


class CollaborativeFilteringModel(tf.keras.Model):
  """Predicts a rating [B] from `user_index` and `movie_index` [B]."""

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

  def call(self, inputs, training=False):
    users, movies = inputs[features.USER_INDEX], inputs[features.MOVIE_INDEX]
    interaction = tf.reduce_sum(self.user_embedding(users) * self.movie_embedding(movies), axis=-1)
    biases = tf.squeeze(self.user_bias(users), -1) + tf.squeeze(self.movie_bias(movies), -1)
    return self.global_bias + biases + interaction
