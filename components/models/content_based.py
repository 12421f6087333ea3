"""`content_based`: a two-tower model over user and movie content features.

The movie tower sees genres, title tokens, release decade and the movie ID embedding (the OOV
row for a movie unseen in training). The user tower sees age bucket, gender, occupation and zip
prefix (where a dataset has none, as MovieLens latest, the user ID embedding) and the user's
*rating profile*, built from the movies the user rated:

  residual_j = r_uj - global - b_j          (how much more the user liked movie j than usual)
  offset_u   = sum_j residual_j / (n_u + shrinkage)
  taste_u    = sum_j [residual_j * content_j, content_j] / (n_u + shrinkage)
               (content_j: movie j's features; the second half says what the user chose to
               rate at all, which tells taste even where the ratings are average)

rating = global + movie bias + user-feature bias + offset_u + <user vector, movie vector>.

Ranking (what `recommend` orders by): a rating objective alone ranks the catalogue badly (it
puts obscure movies with a high predicted rating first: NDCG@10 0.109 on Microsoft Recommenders'
ML-100K protocol, below most-popular's 0.242). So, as TensorFlow Recommenders' two-tower
retrieval models do, the model also learns *which* movie a user picks: a softmax over the
catalogue of the logit <user ranking vector, movie ranking vector> + movie ranking bias, from
ranking towers over the same inputs (user features and rating profile; movie content and ID),
trained with squared error + `retrieval_weight` x its cross entropy. The softmax is exact (every
training movie scored each step) up to `exact_ranking_movies` movies, and beyond that over the
batch's own movies with the logQ correction (tfrs.tasks.Retrieval). `retrieval_weight` 0 turns
the ranking head off: the model then ranks by predicted rating.

New movies: with `movie_id_dropout` p, training replaces a movie's ID with the out-of-vocabulary
ID (its embedding and bias) with probability p: per example for the rating, per movie and step
for the ranking softmax's candidates. The model so learns to rate and rank a movie from its
content alone, which is how it scores a catalogue movie that has no training ratings (DropoutNet,
Volkovs et al. 2017). Such a movie is read through its shared title words only: a word held by
fewer than `min_title_token_movies` training movies is read as the unknown word
(`shared_title_tokens`). A word of one title ("godfather") is a second movie ID, which a new
movie never has; learned from that title's ratings it made new movies' ratings worse, while a
known movie's rare words help it (docs/tuning.md has the measurements).

Demographics alone say little about a new user's taste (on ML-100K they barely beat each
movie's mean rating for users held out of training), but a handful of ratings say a lot: a
user unseen in training is scored from the ratings sent with the request (`rated_movie_ids`,
`rated_ratings`, see components/export/signatures.py), with no retraining. A known user's profile is
their training ratings, stored in the model; in training the rating being predicted is left out
of its own profile, so the model learns to predict a rating from the *other* ratings.
"""

from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from components.data import features as f
from components.models import histories
from components.models import recommender


def _bag_mean(table: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
  """Mean of `table`'s rows [V, D] at the non-padding (id > 0) ids [B, L] -> [B, D] (zeros for a
  row without any), as a sparse [B, V] x dense [V, D] product: its gradient is one dense [V, D]
  block, where a lookup's is a [B x L, D] block of rows to merge with the table's other lookups
  (most of a content_based step on a big catalogue)."""
  ids = tf.cast(ids, tf.int64)
  where = tf.where(ids > 0)
  count = tf.reduce_sum(tf.cast(ids > 0, table.dtype), axis=1)
  weights = 1.0 / tf.gather(count, where[:, 0])
  bag = tf.SparseTensor(tf.stack([where[:, 0], tf.gather_nd(ids, where)], axis=1), weights,
                        tf.stack([tf.shape(ids, out_type=tf.int64)[0],
                                  tf.shape(table, out_type=tf.int64)[0]]))
  return tf.sparse.sparse_dense_matmul(bag, table)


def shared_title_tokens(title_token_ids: np.ndarray, vocab_size: int,
                        min_movies: int) -> np.ndarray:
  """token id -> itself where at least `min_movies` of the movies' title token rows
  `title_token_ids` [movies, L] hold it, else the out-of-vocabulary token (vocab_size - 1);
  padding 0 stays 0. A word of one movie's title only ("toy", "godfather") names that movie:
  learned from its ratings, it is a second movie ID that a new movie never has, and the OOV
  token would mean "a movie rated once". Mapped to OOV, it means "a rare word", learned from
  many movies, as a new movie's unseen words are."""
  ids = np.asarray(title_token_ids, np.int64)
  rows = np.repeat(np.arange(len(ids)), ids.shape[1])
  pairs = np.unique(np.stack([rows, ids.reshape(-1)], axis=1), axis=0)
  movies = np.bincount(pairs[:, 1], minlength=vocab_size)[:vocab_size]
  mapping = np.where(movies >= min_movies, np.arange(vocab_size), vocab_size - 1)
  mapping[0] = 0
  return mapping.astype(np.int64)


class ContentBasedModel(recommender.Recommender):
  """Predicts a rating [B] from transformed content features."""

  # The movie's content: training may leave it out of its inputs (`with_content`).
  content_feature_names = (f.GENRE_IDS, f.TITLE_TOKEN_IDS, f.RELEASE_BUCKET)
  movie_feature_names = content_feature_names + (f.MOVIE_INDEX,)
  popularity_for_unknown_users = False  # an unknown user is scored from their features
  takes_profile = True  # a request's ratings, read through `profile`
  # Optional inputs: a rating profile computed elsewhere (from a request) by `profile`, with
  # `HAS_PROFILE` (`profile_inputs`).
  PROFILE_OFFSET, PROFILE_TASTE = 'profile_offset', 'profile_taste'
  # Training input: each example's position in the stored history (`history_positions`).
  HISTORY_POSITION = 'history_position'
  vocabulary_tables = {
      'genre_embedding': (f.GENRE_VOCAB, 1), 'title_embedding': (f.TITLE_VOCAB, 1),
      'movie_id_embedding': (f.MOVIE_VOCAB, 0), 'movie_bias': (f.MOVIE_VOCAB, 0),
      f'user_feature_embeddings/{f.GENDER_ID}': (f.GENDER_VOCAB, 0),
      f'user_feature_embeddings/{f.OCCUPATION_ID}': (f.OCCUPATION_VOCAB, 0),
      f'user_feature_embeddings/{f.ZIP_PREFIX_ID}': (f.ZIP_VOCAB, 0),
      f'user_feature_embeddings/{f.USER_INDEX}': (f.USER_VOCAB, 0)}

  def __init__(self, vocab_sizes: Dict[str, int], has_demographics: bool, embedding_dim: int,
               l2: float, global_mean: float, seed: int,
               history: Tuple[np.ndarray, np.ndarray, np.ndarray],
               movie_content: Dict[str, np.ndarray], profile_shrinkage: float = 5.0,
               training_profile_cap: Optional[int] = None, retrieval_weight: float = 0.0,
               exact_ranking_movies: int = 4096, movie_id_dropout: float = 0.0,
               min_title_token_movies: int = 1, **kwargs):
    """`history`: (user index, movie index, rating) of the training ratings; `movie_content`:
    genre_ids, title_token_ids and release_bucket of each movie index (OOV row included);
    `training_profile_cap`: in training, a user's profile is drawn from at most this many of
    their stored ratings (`stored_profile`). `retrieval_weight`, `exact_ranking_movies`,
    `movie_id_dropout`, `min_title_token_movies`: the ranking head and new movies (see the
    module docstring)."""
    super().__init__(**kwargs)
    self.has_demographics = has_demographics
    self.user_feature_names = ((f.AGE_BUCKET, f.GENDER_ID, f.OCCUPATION_ID, f.ZIP_PREFIX_ID,
                                f.USER_INDEX) if has_demographics else (f.USER_INDEX,))
    self.profile_shrinkage = profile_shrinkage
    regularizer = tf.keras.regularizers.l2(l2)
    counter = iter(range(1000))

    def embedding(name, size, dim=embedding_dim):
      return tf.keras.layers.Embedding(
          size, dim, embeddings_regularizer=regularizer, name=name,
          embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.05,
                                                                    seed=seed + next(counter)))

    self.genre_embedding = embedding('genre_embedding', vocab_sizes[f.GENRE_IDS])
    self.title_embedding = embedding('title_embedding', vocab_sizes[f.TITLE_TOKEN_IDS])
    for bag in (self.genre_embedding, self.title_embedding):  # tables used directly (_bag_mean)
      bag.build((None,))
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
    self.retrieval_weight = float(retrieval_weight)
    self.movie_id_dropout = float(movie_id_dropout)
    self.num_movies = vocab_sizes[f.MOVIE_INDEX]
    self._exact_ranking = self.num_movies - 1 <= exact_ranking_movies
    if self.retrieval_weight:
      self.user_ranking_tower = tf.keras.Sequential(
          [dense('user_ranking_hidden', 2 * embedding_dim, 'relu'),
           dense('user_ranking_vector', embedding_dim)])
      # The last output is the movie's ranking bias (how often it is picked, from its content).
      self.movie_ranking_tower = tf.keras.Sequential(
          [dense('movie_ranking_hidden', 2 * embedding_dim, 'relu'),
           dense('movie_ranking_vector', embedding_dim + 1)])
      if not self._exact_ranking:
        import tensorflow_recommenders as tfrs  # pylint: disable=import-outside-toplevel
        self.retrieval_task = tfrs.tasks.Retrieval(
            loss=tf.keras.losses.CategoricalCrossentropy(
                from_logits=True, reduction=tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
            remove_accidental_hits=True)
    self.global_bias = tf.Variable(global_mean, dtype=tf.float32, name='global_bias')

    users, movies, ratings = (np.asarray(a) for a in history)
    order = np.lexsort((movies, users))
    self._history_order = order  # a NumPy array: not saved with the model
    counts = np.bincount(users.astype(np.int64), minlength=vocab_sizes[f.USER_INDEX])
    popularity = np.bincount(movies.astype(np.int64), minlength=self.num_movies)
    # In-batch negatives are drawn as often as a movie is rated: their logQ correction.
    self._pick_probability = tf.constant(popularity / max(popularity.sum(), 1), tf.float32)
    self.history_movies = tf.Variable(movies[order].astype(np.int64), trainable=False,
                                      name='history_movies')
    self.history_ratings = tf.Variable(ratings[order].astype(np.float32), trainable=False,
                                       name='history_ratings')
    self.history_splits = tf.Variable(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                                      trainable=False, name='history_splits')
    # Only where some user has more ratings than the cap (none on ML-100K): otherwise the
    # training step is the uncapped one, op for op.
    self._profile_cap = (int(training_profile_cap) if training_profile_cap
                         and training_profile_cap < counts.max() else None)
    self.movie_content = {name: tf.Variable(np.asarray(values, np.int64), trainable=False,
                                            name=f'content_{name}')
                          for name, values in movie_content.items()}
    self.title_token_map = tf.Variable(
        shared_title_tokens(movie_content[f.TITLE_TOKEN_IDS], vocab_sizes[f.TITLE_TOKEN_IDS],
                            min_title_token_movies), trainable=False, name='title_token_map')

  def _sums(self, content: tf.Tensor, bias: tf.Tensor, ratings: tf.RaggedTensor):
    """Per row of `ratings` [R, None]: (sum of residuals [R], of [residual x content, content]
    [R, 2C], count [R]) for rated movies with `content` [N, C] and `bias` [N] (N = flat
    ratings)."""
    residual = ratings.flat_values - self.global_bias - bias
    rows = ratings.value_rowids()
    segments = ratings.nrows()
    weighted = tf.concat([residual[:, tf.newaxis] * content, content], axis=-1)
    return (tf.math.unsorted_segment_sum(residual, rows, segments),
            tf.math.unsorted_segment_sum(weighted, rows, segments),
            tf.cast(ratings.row_lengths(), tf.float32))

  def _shrunk(self, residual_sum, taste_sum, count):
    denominator = count + self.profile_shrinkage
    return residual_sum / denominator, taste_sum / denominator[:, tf.newaxis]

  def profile(self, movie_inputs: Dict[str, tf.Tensor], ratings: tf.RaggedTensor):
    """(offset [B], taste [B, 2C]) from rated movies: `movie_inputs` are the movie features of
    `ratings.flat_values`' movies, `ratings` [B, None] the ratings given, row by row."""
    bias = tf.squeeze(self.movie_bias(movie_inputs[f.MOVIE_INDEX]), -1)
    residual_sum, taste_sum, count = self._sums(self.movie_features(movie_inputs), bias,
                                                ratings)
    return self._shrunk(residual_sum, taste_sum, count)

  def profile_inputs(self, movie_inputs, ratings):
    offset, taste = self.profile(movie_inputs, ratings)
    return {self.PROFILE_OFFSET: offset, self.PROFILE_TASTE: taste,
            self.HAS_PROFILE: ratings.row_lengths() > 0}

  def training_inputs(self, num_examples: int) -> Dict[str, np.ndarray]:
    """Each example's position in the stored history: the rating is left out of its profile."""
    return {self.HISTORY_POSITION: self.history_positions(num_examples)}

  def history_positions(self, num_examples: int) -> np.ndarray:
    """Where each example of the `history` the model was built from sits in the stored history
    (the `HISTORY_POSITION` training input: see `call`)."""
    if num_examples != len(self._history_order):
      raise ValueError(f'{num_examples} training examples, but the model stores '
                       f'{len(self._history_order)} ratings: train on the history it was built '
                       'with')
    positions = np.empty_like(self._history_order)
    positions[self._history_order] = np.arange(len(positions))
    return positions

  def stored_profile(self, users: tf.Tensor, own_positions: Optional[tf.Tensor] = None,
                     training: bool = False):
    """The profile of training users [B] from their stored ratings; an unknown user has an
    empty profile. In training, each user's profile is a random subset of their ratings (kept
    with a probability drawn per user, so profiles of every size, down to a new user's few or
    none, are seen) without the rating at stored position `own_positions` [B], the one being
    predicted. With a `training_profile_cap`, the subset is drawn from a systematic sample of
    at most that many of a user's ratings (histories.sampled_user_entries): a heavy user's
    profile is a mean over hundreds of ratings either way, and the step's cost stops growing
    with the most active users' history lengths.

    The sums over rated movies are sparse [distinct users, movies] x dense [movies, C] products
    (their gradients sparse^T x dense): each step touches each stored rating of the batch's
    users once, without materialising a [ratings, C] block (3x faster training steps than
    gathering content per rating and summing segments, the same sums)."""
    distinct, position = tf.unique(users, out_idx=tf.int64)
    starts = tf.gather(self.history_splits, distinct)
    locate = None
    if training and self._profile_cap:
      entries, rows, row_splits, locate = histories.sampled_user_entries(
          self.history_splits, distinct, self._profile_cap)
    else:
      entries, rows, row_splits = histories.user_entries(self.history_splits, distinct)
    if training:
      share = tf.random.uniform(tf.shape(distinct))
      keep = tf.random.uniform(tf.shape(entries)) < tf.gather(share, rows)
      entries, rows = tf.boolean_mask(entries, keep), tf.boolean_mask(rows, keep)
    stored_movies = tf.gather(self.history_movies, entries)
    ratings = tf.gather(self.history_ratings, entries)
    own_movies = (tf.gather(self.history_movies, own_positions) if own_positions is not None
                  else tf.zeros([0], tf.int64))
    # The content of the movies this step uses, each once: a step of a few users' profiles
    # uses a fraction of a big catalogue, and every movie's content and its gradient cost a
    # [catalogue, C] block per step (most of a step at 10M ratings, 33K movies).
    used, column = tf.unique(tf.concat([stored_movies, own_movies], axis=0), out_idx=tf.int64)
    movies, own_movies = column[:tf.size(stored_movies)], column[tf.size(stored_movies):]
    used_inputs = {name: tf.gather(values, used) for name, values in self.movie_content.items()}
    used_inputs[f.MOVIE_INDEX] = used
    content = self.movie_features(used_inputs)                       # [used movies, C]
    bias = tf.squeeze(self.movie_bias(used), -1)
    num_movies = tf.shape(used, out_type=tf.int64)[0]
    residual = ratings - self.global_bias - tf.gather(bias, movies)
    num_rows = tf.shape(distinct, out_type=tf.int64)[0]
    rated = lambda values, dense: tf.sparse.sparse_dense_matmul(
        tf.SparseTensor(tf.stack([rows, movies], axis=1), values,
                        tf.stack([num_rows, num_movies])), dense)
    # sum residual x content = sum rating x content - sum (global + bias) x content: the sparse
    # operands hold constants (ratings, ones), so gradients flow through the dense side only.
    shifted, chosen = tf.split(rated(tf.ones_like(ratings), tf.concat(
        [(self.global_bias + bias)[:, tf.newaxis] * content, content], axis=-1)), 2, axis=-1)
    taste_sum = tf.concat([rated(ratings, content) - shifted, chosen], axis=-1)
    residual_sum = tf.math.unsorted_segment_sum(residual, rows, num_rows)
    count = tf.math.unsorted_segment_sum(tf.ones_like(residual), rows, num_rows)
    residual_sum, taste_sum, count = (tf.gather(t, position)
                                      for t in (residual_sum, taste_sum, count))
    if own_positions is not None:
      own_count = tf.ones_like(residual_sum)
      if training and locate is None:  # left out only where the random subset kept it
        local = tf.gather(row_splits, position) + own_positions - tf.gather(starts,
                                                                                  position)
        own_count = tf.cast(tf.gather(keep, local), tf.float32)
      elif training:  # ... and only where the capped sample holds it
        sampled, local = locate(own_positions, position)
        own_count = tf.where(sampled, tf.cast(tf.gather(keep, local), tf.float32), 0.0)
      own_residual = own_count * (tf.gather(self.history_ratings, own_positions)
                                  - self.global_bias - tf.gather(bias, own_movies))
      own_content = tf.gather(content, own_movies)
      residual_sum -= own_residual
      taste_sum -= tf.concat([own_residual[:, tf.newaxis] * own_content,
                              own_count[:, tf.newaxis] * own_content], axis=-1)
      count -= own_count
    return self._shrunk(residual_sum, taste_sum, count)

  def user_features(self, inputs) -> tf.Tensor:
    return tf.concat([layer(inputs[name]) for name, layer in
                      sorted(self.user_feature_embeddings.items())], axis=-1)

  def movie_features(self, inputs) -> tf.Tensor:
    """The movies' content [M, C]; a movie read without its ID (the OOV index: new, or its ID
    dropped in training) is read through its shared title words only (`shared_title_tokens`)."""
    titles = inputs[f.TITLE_TOKEN_IDS]
    without_id = tf.equal(inputs[f.MOVIE_INDEX], self.num_movies - 1)[:, tf.newaxis]
    titles = tf.where(without_id, tf.gather(self.title_token_map, titles), titles)
    return tf.concat([
        _bag_mean(self.genre_embedding.embeddings, inputs[f.GENRE_IDS]),
        _bag_mean(self.title_embedding.embeddings, titles),
        self.release_embedding(inputs[f.RELEASE_BUCKET]),
        self.movie_id_embedding(inputs[f.MOVIE_INDEX]),
    ], axis=-1)

  def _user_input(self, inputs, own_positions=None, training=False):
    """(the user towers' input [B, F], the raw user features [B, F'], offset_u [B]) of the users
    described by `inputs`: their features and rating profile (from `inputs` where
    `has_profile`, else stored; see the module docstring)."""
    offset, taste = self.stored_profile(inputs[f.USER_INDEX], own_positions, training)
    if self.HAS_PROFILE in inputs:
      given = inputs[self.HAS_PROFILE]
      offset = tf.where(given, inputs[self.PROFILE_OFFSET], offset)
      taste = tf.where(given[:, tf.newaxis], inputs[self.PROFILE_TASTE], taste)
    user_raw = self.user_features(inputs)
    return tf.concat([user_raw, taste], axis=-1), user_raw, offset

  def user_representation(self, inputs, own_positions=None, training=False):
    """(vector [B, D], bias [B]) of the users described by `inputs`, for the rating."""
    tower_input, user_raw, offset = self._user_input(inputs, own_positions, training)
    return (self.user_tower(tower_input),
            tf.squeeze(self.user_bias(user_raw), -1) + offset)

  def movie_representation(self, inputs):
    """(vector [M, D], bias [M]) of the movies described by `inputs`, for the rating."""
    return (self.movie_tower(self.movie_features(inputs)),
            tf.squeeze(self.movie_bias(inputs[f.MOVIE_INDEX]), -1))

  @property
  def ranks_by_rating(self) -> bool:
    """Without a ranking head (`retrieval_weight` 0), `recommend` orders by predicted rating."""
    return not self.retrieval_weight

  def ranking_user(self, inputs):
    """(vector [B, R], offset [B]): ranking score = offset + <vector, movie vector> + movie bias
    (`ranking_movies`); with the ranking head the offset is 0 (a log-probability of the pick,
    up to a per-user constant), without it the score is the predicted rating."""
    if self.ranks_by_rating:
      vector, bias = self.user_representation(inputs)
      return vector, self.global_bias + bias
    vector = self.user_ranking_tower(self._user_input(inputs)[0])
    return vector, tf.zeros_like(vector[:, 0])

  def ranking_movies(self, inputs):
    """(vector [M, R], bias [M]) of the movies described by `inputs` (see `ranking_user`)."""
    if self.ranks_by_rating:
      return self.movie_representation(inputs)
    return self._ranking_movie_vectors(self.movie_features(inputs))

  def _ranking_movie_vectors(self, movie_features):
    output = self.movie_ranking_tower(movie_features)
    return output[:, :-1], output[:, -1]

  def _dropped_ids(self, movies: tf.Tensor) -> tf.Tensor:
    """`movies` with each replaced by the out-of-vocabulary index with `movie_id_dropout`."""
    if not self.movie_id_dropout:
      return movies
    drop = tf.random.uniform(tf.shape(movies)) < self.movie_id_dropout
    return tf.where(drop, tf.constant(self.num_movies - 1, movies.dtype), movies)

  def ranking_loss(self, user_input: tf.Tensor, inputs) -> tf.Tensor:
    """Mean cross entropy of each example's movie among the catalogue's (exact) or the
    batch's movies (sampled, with the logQ correction and without accidental hits)."""
    query = self.user_ranking_tower(user_input)
    movies = inputs[f.MOVIE_INDEX]
    if self._exact_ranking:
      catalogue = tf.range(self.num_movies - 1, dtype=tf.int64)  # every training movie
      candidates = {name: values[:-1] for name, values in self.movie_content.items()}
      candidates[f.MOVIE_INDEX] = self._dropped_ids(catalogue)
      vectors, bias = self._ranking_movie_vectors(self.movie_features(candidates))
      logits = tf.matmul(query, vectors, transpose_b=True) + bias
      return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=tf.cast(movies, tf.int32), logits=logits))
    picked = {name: inputs[name] for name in self.movie_feature_names}
    picked[f.MOVIE_INDEX] = self._dropped_ids(movies)
    vectors, bias = self._ranking_movie_vectors(self.movie_features(picked))
    # The bias as one more factor: <[query, 1], [vector, bias]>.
    return self.retrieval_task(
        tf.concat([query, tf.ones_like(query[:, :1])], axis=-1),
        tf.concat([vectors, bias[:, tf.newaxis]], axis=-1),
        candidate_sampling_probability=tf.gather(self._pick_probability, movies),
        candidate_ids=movies, compute_metrics=False)

  def build_weights(self, inputs):
    super().build_weights(self.with_content(inputs))

  def with_content(self, inputs):
    """`inputs` with the content of their movies looked up by movie index where they do not
    carry it: the Trainer reads content as one row per movie (model_io.load_examples), the same
    values the examples hold, the rows `movie_content` was built from."""
    missing = [name for name in self.content_feature_names if name not in inputs]
    if not missing:
      return inputs
    filled = dict(inputs)
    for name in missing:
      filled[name] = tf.gather(self.movie_content[name], inputs[f.MOVIE_INDEX])
    return filled

  @tf.autograph.experimental.do_not_convert  # Python control flow only (fast_tracing.py)
  def call(self, inputs, training=False):
    """The rating [B]; in training, also adds the ranking loss (`ranking_loss`), from the same
    profile: the example's own rating is left out of it (it is the label, and the pick)."""
    inputs = self.with_content(inputs)
    own_positions = None
    if training:
      if self.HISTORY_POSITION not in inputs:
        raise ValueError(f'training needs {self.HISTORY_POSITION!r} among the inputs '
                         '(ContentBasedModel.history_positions) to leave each rating out of '
                         'its own profile')
      own_positions = inputs[self.HISTORY_POSITION]
    tower_input, user_raw, offset = self._user_input(inputs, own_positions, training)
    user = self.user_tower(tower_input)
    user_bias = tf.squeeze(self.user_bias(user_raw), -1) + offset
    movie_inputs = inputs
    if training and self.movie_id_dropout:
      movie_inputs = dict(inputs)
      movie_inputs[f.MOVIE_INDEX] = self._dropped_ids(inputs[f.MOVIE_INDEX])
    movie, movie_bias = self.movie_representation(movie_inputs)
    if training and self.retrieval_weight:
      self.add_loss(self.retrieval_weight * self.ranking_loss(tower_input, inputs))
    return self.global_bias + user_bias + movie_bias + tf.reduce_sum(user * movie, axis=-1)
