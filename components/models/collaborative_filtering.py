"""`collaborative_filtering`: a two-task model over user and movie ID embeddings.

Rating (SVD++, Koren 2008): rating(u, m) = global + b_u + b_m + <p_u + |N(u)|^-1/2 sum_{j in
N(u)} y_j, q_m>, where N(u) are the movies u rated in training (the implicit signal of *what*
a user chose to rate, which plain matrix factorisation ignores).

Ranking: a rating-only model ranks the catalogue badly (it puts obscure movies with a high
predicted rating first; Microsoft Recommenders measured NDCG@10 0.096 for SVD on ML-100K). So the
same model also learns which movies a user picks: a softmax over the whole catalogue of the
logit <[p_u + implicit(u), r_u], [q_m, s_m]> + c_m, with r_u, s_m extra ranking-only factors and
c_m a popularity bias. The ranking head reuses the rating factors (the two tasks share the user
and movie representations), and the loss is squared error + `retrieval_weight` x softmax cross
entropy. Sharing helped both tasks on validation data carved from training data
(`python -m bench.tune`): RMSE and NDCG@10 were better than with separate models.

The softmax is exact (all movies are scored each step) for catalogues of a few thousand movies:
on ML-100K a sampled one lost validation accuracy (docs/tuning.md). For bigger catalogues
(`ranking_negatives` > 0) it is a sampled softmax over negatives shared by the batch, drawn by
popularity, with the logQ correction and without accidental hits (`ranking_loss`).

Where every user fits in a step (`score_all_users`: as many users as a batch has examples, the
catalogue exact and no history cap), a training step scores all users against all movies
(`_catalogue_step`): the exact softmax needs those [users x movies] logits anyway, and each
example's rating term is an entry of the same product, so an example costs a few scalar
gathers instead of gathering, multiplying and scattering back rows of factors. The loss and its
gradients are the same as the per-example step's.

IDs unseen in training map to the OOV row (no history), so they never fail; after training that
row is set to the mean trained user (`fill_unknown_users`), so an unseen user's rating is an
average user's. A new user who sends ratings is folded in (`profile_inputs`): their own
parameters (p_u, r_u, b_u) minimise the training loss over those ratings, every other weight
fixed, with N(u) the movies sent. A new user who sends none gets the most rated movies (see
components/export/signatures.py).
"""

from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from components.data import features
from components.models import histories
from components.models import recommender


class CollaborativeFilteringModel(recommender.Recommender):
  """Predicts a rating [B] from `user_index` and `movie_index` [B]; ranks with `ranking_*`."""

  user_feature_names = (features.USER_INDEX,)
  movie_feature_names = (features.MOVIE_INDEX,)
  popularity_for_unknown_users = True  # who send no ratings (`profile_inputs` folds them in)
  # `profile_inputs`' outputs: the folded-in user's rating factors (p_u + implicit), ranking
  # factors and bias.
  FOLDED_FACTORS, FOLDED_RANKING, FOLDED_BIAS = 'folded_factors', 'folded_ranking', 'folded_bias'
  FOLD_IN_STEPS = 3  # Newton steps from the mean user: the fold-in's loss is convex
  vocabulary_tables = {
      **{name: (features.USER_VOCAB, 0)
         for name in ('user_embedding', 'user_bias', 'user_ranking_embedding')},
      **{name: (features.MOVIE_VOCAB, 0)
         for name in ('movie_embedding', 'implicit_embedding', 'movie_bias',
                      'movie_ranking_embedding', 'movie_ranking_bias')}}

  def __init__(self, num_users: int, num_movies: int, embedding_dim: int, l2: float,
               global_mean: float, seed: int, history: Tuple[np.ndarray, np.ndarray],
               retrieval_dim: int = 32, retrieval_l2: float = 3e-5,
               retrieval_weight: float = 0.5, ranking_negatives: int = 0,
               training_history_cap: Optional[int] = None, score_all_users: bool = False,
               new_user_prior: float = 1.0, new_user_bias_prior: Optional[float] = None,
               **kwargs):
    """`history` is (user indices, movie indices) of the training ratings: N(u) above.
    `ranking_negatives` > 0 makes the training softmax a sampled one (`ranking_loss`).
    `training_history_cap`: in training, N(u)'s sum is estimated from at most this many of
    the user's ratings (`_distinct_user_factors`). `score_all_users`: train with
    `_catalogue_step` where it applies (exact softmax, no cap in effect). `new_user_prior`: the
    weight of the fold-in's pull towards the mean trained user (`profile_inputs`);
    `new_user_bias_prior`, if given, that weight on the rating bias b_u."""
    super().__init__(**kwargs)
    self.num_movies = num_movies
    self.new_user_prior = new_user_prior
    self.new_user_bias_prior = (new_user_prior if new_user_bias_prior is None
                                else new_user_bias_prior)
    # The fold-in's starting point and prior: the mean trained user's [p_u, r_u, b_u]
    # (`set_new_user_mean`, after training).
    self.new_user_mean = tf.Variable(tf.zeros([embedding_dim + retrieval_dim + 1]),
                                     trainable=False, name='new_user_mean')
    self.retrieval_weight = retrieval_weight
    self.ranking_negatives = ranking_negatives
    self.seed = seed
    counter = iter(range(100))

    def embedding(name, rows, dim, l2_weight, stddev=0.05):
      initializer = (tf.keras.initializers.RandomNormal(stddev=stddev, seed=seed + next(counter))
                     if stddev else 'zeros')
      return tf.keras.layers.Embedding(
          rows, dim, embeddings_initializer=initializer,
          embeddings_regularizer=tf.keras.regularizers.l2(l2_weight) if l2_weight else None,
          name=name)

    self.user_embedding = embedding('user_embedding', num_users, embedding_dim, l2)
    self.movie_embedding = embedding('movie_embedding', num_movies, embedding_dim, l2)
    self.implicit_embedding = embedding('implicit_embedding', num_movies, embedding_dim, l2, 0)
    self.implicit_embedding.build((None,))  # its table is used directly (_distinct_user_factors)
    self.user_bias = embedding('user_bias', num_users, 1, l2, 0)
    self.movie_bias = embedding('movie_bias', num_movies, 1, l2, 0)
    self.global_bias = tf.Variable(global_mean, dtype=tf.float32, name='global_bias')
    self.user_ranking_embedding = embedding('user_ranking_embedding', num_users, retrieval_dim,
                                            retrieval_l2)
    self.movie_ranking_embedding = embedding('movie_ranking_embedding', num_movies,
                                             retrieval_dim, retrieval_l2)
    self.movie_ranking_bias = embedding('movie_ranking_bias', num_movies, 1, None, 0)

    users, movies = (np.asarray(a, np.int64) for a in history)
    order = np.lexsort((movies, users))
    counts = np.bincount(users, minlength=num_users)
    self.history_movies = tf.Variable(movies[order], trainable=False, name='history_movies')
    self.history_splits = tf.Variable(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                                      trainable=False, name='history_splits')
    scale = (1.0 / np.sqrt(np.maximum(counts, 1))).astype(np.float32)  # |N(u)|^-1/2
    self.history_scale = tf.Variable(scale, trainable=False, name='history_scale')
    # Only where some user has more ratings than the cap (none on ML-100K): otherwise the
    # training step is the uncapped one, op for op.
    self._history_cap = (int(training_history_cap) if training_history_cap
                         and training_history_cap < counts.max() else None)
    self.num_users = num_users
    self._catalogue_training = bool(score_all_users and not ranking_negatives
                                    and self._history_cap is None)
    if self._catalogue_training:
      for layer in (self.user_embedding, self.movie_embedding, self.user_bias, self.movie_bias,
                    *((self.user_ranking_embedding, self.movie_ranking_embedding,
                       self.movie_ranking_bias) if retrieval_weight else ())):
        layer.build((None,))  # the step reads their tables directly
      # N(u) of every user as one sparse [users, movies] matrix, weights |N(u)|^-1/2: constants
      # of the training step only, not variables, so the exported model does not carry them.
      self._history_matrix = tf.sparse.SparseTensor(
          np.stack([users[order], movies[order]], axis=1), scale[users[order]],
          [num_users, num_movies])
    # Negatives are drawn in proportion to training popularity (movies without ratings keep a
    # count of 1 so every logit can be pushed down): most of the softmax's mass is on popular
    # movies, so they are the informative negatives.
    popularity = np.bincount(movies, minlength=num_movies).astype(np.float64) + 1.0
    self._negative_cdf = tf.constant(np.cumsum(popularity) / popularity.sum(), tf.float32)
    self._negative_log_probability = tf.constant(np.log(popularity / popularity.sum()),
                                                 tf.float32)

  def _distinct_user_factors(self, distinct: tf.Tensor, training: bool = False) -> tf.Tensor:
    """p_u + |N(u)|^-1/2 sum y_j for distinct users [U] -> [U, D]: the history sums are a
    sparse [U, movies] x dense [movies, D] product (gradient sparse^T x dense), which touches
    each rating of the users once without materialising a [ratings, D] block. In training
    with a `training_history_cap`, a user with n > cap ratings sums a systematic sample of cap
    of them, scaled by n / cap (the same sum in expectation; histories.sampled_user_entries),
    so the step's cost stops growing with the most active users' history lengths."""
    if training and self._history_cap:
      entries, rows, _, _ = histories.sampled_user_entries(self.history_splits, distinct,
                                                           self._history_cap)
      lengths = tf.gather(self.history_splits, distinct + 1) - tf.gather(self.history_splits,
                                                                         distinct)
      scale = tf.gather(self.history_scale, distinct) * tf.cast(
          tf.maximum(lengths, self._history_cap) / self._history_cap, tf.float32)
      weight = lambda: tf.gather(scale, rows)
    else:
      entries, rows, _ = histories.user_entries(self.history_splits, distinct)
      weight = lambda: tf.gather(self.history_scale, tf.gather(distinct, rows))
    # `weight` is built after the indices: the uncapped step keeps its op order (and so the
    # op seeds TensorFlow derives from it) exactly as before the cap existed.
    history = tf.sparse.SparseTensor(
        tf.stack([rows, tf.gather(self.history_movies, entries)], axis=1), weight(),
        tf.stack([tf.shape(distinct, out_type=tf.int64)[0], self.num_movies]))
    implicit = tf.sparse.sparse_dense_matmul(history, self.implicit_embedding.embeddings)
    return self.user_embedding(distinct) + implicit

  def _user_factors(self, users: tf.Tensor) -> tf.Tensor:
    """p_u + |N(u)|^-1/2 sum y_j for users [B] -> [B, D], computed once per distinct user."""
    distinct, position = tf.unique(users)
    return tf.gather(self._distinct_user_factors(distinct), position)

  def movie_representation(self, inputs):
    """(vector [M, D], bias [M]) of the movies in `inputs`, for the rating."""
    movies = inputs[features.MOVIE_INDEX]
    return self.movie_embedding(movies), tf.squeeze(self.movie_bias(movies), -1)

  def ranking_user(self, inputs):
    """(vector [B, D + R], offset [B]) of the users: ranking score = offset + <vector, movie>
    + movie bias (see `ranking_movies`)."""
    users = inputs[features.USER_INDEX]
    vector = tf.concat([self._user_factors(users), self.user_ranking_embedding(users)], axis=-1)
    if self.HAS_PROFILE in inputs:  # users folded in from a request's ratings
      folded = tf.concat([inputs[self.FOLDED_FACTORS], inputs[self.FOLDED_RANKING]], axis=-1)
      vector = tf.where(inputs[self.HAS_PROFILE][:, tf.newaxis], folded, vector)
    return vector, tf.zeros_like(vector[:, 0])

  def ranking_movies(self, inputs):
    """(vector [M, D + R], bias [M]) of the movies for ranking: the softmax logits' terms."""
    movies = inputs[features.MOVIE_INDEX]
    vector = tf.concat([self.movie_embedding(movies), self.movie_ranking_embedding(movies)],
                       axis=-1)
    return vector, tf.squeeze(self.movie_ranking_bias(movies), -1)

  @tf.autograph.experimental.do_not_convert  # Python control flow only (fast_tracing.py)
  def call(self, inputs, training=False):
    """The rating [B]; in training, also adds the ranking loss (`ranking_loss`), computed from
    the same user factors (each distinct user's history summed once per step)."""
    users, movies = inputs[features.USER_INDEX], inputs[features.MOVIE_INDEX]
    if training and self._catalogue_training:
      return self._catalogue_step(users, movies)
    distinct, position = tf.unique(users, out_idx=tf.int64)
    factors = self._distinct_user_factors(distinct, training)
    user = tf.gather(factors, position)
    user_bias = tf.squeeze(self.user_bias(users), -1)
    if self.HAS_PROFILE in inputs:  # users folded in from a request's ratings
      given = inputs[self.HAS_PROFILE]
      user = tf.where(given[:, tf.newaxis], inputs[self.FOLDED_FACTORS], user)
      user_bias = tf.where(given, inputs[self.FOLDED_BIAS], user_bias)
    movie, movie_bias = self.movie_representation(inputs)
    if training and self.retrieval_weight:
      self.add_loss(self.retrieval_weight * self.ranking_loss(distinct, factors, position, movies))
    return self.global_bias + user_bias + movie_bias + tf.reduce_sum(user * movie, axis=-1)

  def _catalogue_step(self, users: tf.Tensor, movies: tf.Tensor) -> tf.Tensor:
    """`call` in training when every user is scored each step: the rating [B] of each example,
    with the exact ranking loss added, from [users x movies] products.

    A = (p_u + implicit(u)) q_m for all users and movies; logits = A + r_u s_m + c_m. The
    rating of example (u, m) is global + b_u + b_m + A[u, m], its picked logit logits[u, m],
    and the softmax normaliser of user u counts once per example of u in the batch (users
    without examples weigh 0): the per-example step's loss. Its gradient with respect to A is
    one dense [users x movies] matrix, the softmax's plus each example's scalar at (u, m), so
    the backward pass is the same matrix products for both tasks (`_catalogue_products`)."""
    factors = self.user_embedding.embeddings + tf.sparse.sparse_dense_matmul(
        self._history_matrix, self.implicit_embedding.embeddings)
    ranking = ((tf.convert_to_tensor(self.user_ranking_embedding.embeddings),
                tf.convert_to_tensor(self.movie_ranking_embedding.embeddings),
                self.movie_ranking_bias.embeddings[:, 0]) if self.retrieval_weight else ())
    dots, ranking_loss = self._catalogue_products(
        users, movies, tf.math.unsorted_segment_sum(
            tf.ones_like(users, tf.float32), users, self.num_users))(
                factors, tf.convert_to_tensor(self.movie_embedding.embeddings), *ranking)
    if self.retrieval_weight:
      self.add_loss(self.retrieval_weight * ranking_loss)
    return (self.global_bias + tf.gather(self.user_bias.embeddings[:, 0], users)
            + tf.gather(self.movie_bias.embeddings[:, 0], movies) + dots)

  def _catalogue_products(self, users: tf.Tensor, movies: tf.Tensor,
                          examples_per_user: tf.Tensor):
    """A function of (user factors [U, D], movie factors [M, D], and with a ranking loss its
    factors [U, R], [M, R] and bias [M]) -> (A[users, movies] [B], the mean ranking loss or 0),
    with its gradient written out.

    The gradient with respect to A and the logits is a dense softmax part plus one scalar per
    example at (u, m); the scalars are applied as sparse products. TensorFlow's own gradient
    scattered them through a [U x M] segment sum per gathered tensor and broadcast the
    log-sum-exp's, together more time than the matrix products (TF profiler, ML-100K)."""
    count = tf.cast(tf.size(users), tf.float32)
    at = tf.stack([users, movies], axis=1)
    ranked = bool(self.retrieval_weight)

    @tf.custom_gradient
    def products(factors, vectors, *ranking):
      num_movies = tf.shape(vectors, out_type=tf.int64)[0]
      flat = users * num_movies + movies
      scores = tf.matmul(factors, vectors, transpose_b=True)
      dots = tf.gather(tf.reshape(scores, [-1]), flat)
      if ranked:
        ranking_users, ranking_vectors, ranking_bias = ranking
        logits = scores + tf.matmul(ranking_users, ranking_vectors, transpose_b=True) + (
            ranking_bias)
        top = tf.reduce_max(logits, axis=1, keepdims=True)
        exp = tf.exp(logits - top)
        total = tf.reduce_sum(exp, axis=1, keepdims=True)
        picked = tf.gather(tf.reshape(logits, [-1]), flat)
        loss = (tf.reduce_sum(examples_per_user * (top[:, 0] + tf.math.log(total[:, 0])))
                - tf.reduce_sum(picked)) / count
      else:
        loss = tf.constant(0.0)

      def gradient(d_dots, d_loss):
        dense_shape = tf.stack([tf.shape(factors, out_type=tf.int64)[0], num_movies])
        sparse = lambda values: tf.sparse.SparseTensor(at, values, dense_shape)
        times = lambda a, b, **kw: tf.sparse.sparse_dense_matmul(a, b, **kw)
        if ranked:
          pick = tf.fill(tf.shape(d_dots), -d_loss / count)
          softmax = exp * ((d_loss / count) * examples_per_user[:, tf.newaxis] / total)
          d_scores, d_picked = sparse(d_dots + pick), sparse(pick)
          # The softmax part of both tasks' gradients in two products, not four.
          width = tf.shape(factors)[1]
          d_users = tf.matmul(softmax, tf.concat([vectors, ranking_vectors], axis=1))
          d_movies = tf.matmul(softmax, tf.concat([factors, ranking_users], axis=1),
                               transpose_a=True)
          return (d_users[:, :width] + times(d_scores, vectors),
                  d_movies[:, :width] + times(d_scores, factors, adjoint_a=True),
                  d_users[:, width:] + times(d_picked, ranking_vectors),
                  d_movies[:, width:] + times(d_picked, ranking_users, adjoint_a=True),
                  tf.reduce_sum(softmax, axis=0)
                  + tf.math.unsorted_segment_sum(pick, movies, num_movies))
        d_scores = sparse(d_dots)
        return times(d_scores, vectors), times(d_scores, factors, adjoint_a=True)

      return (dots, loss), gradient

    return products

  def sample_negatives(self) -> tf.Tensor:
    """`ranking_negatives` movie indices [S] for one step's sampled softmax, drawn with
    probability Q(m) by training popularity (with replacement)."""
    candidates = tf.searchsorted(
        self._negative_cdf,
        tf.random.uniform([self.ranking_negatives], seed=self.seed), out_type=tf.int64)
    return tf.minimum(candidates, self.num_movies - 1)  # a uniform at the cdf's top

  def ranking_loss(self, distinct, factors, position, movies, negatives=None) -> tf.Tensor:
    """Mean softmax cross entropy of picking the rated movie: `distinct` users [U] with rating
    factors `factors` [U, D]; per example its user's row `position` [B] and the rated `movies`
    [B].

    The softmax's normaliser (log-sum-exp over the catalogue) depends on the user only, so it
    is computed once per distinct user of the batch, not once per example: the same loss, at
    a fraction of the cost when users rate several movies per batch (every user of ML-100K is
    in a batch of 8K ratings: 943 rows of logits instead of 8K).

    With `ranking_negatives` = S > 0 the normaliser is a sampled one (Jean et al. 2015; the
    logQ correction of Yi et al. 2019): S movies shared by the batch, drawn with probability
    Q(m) by training popularity, each logit corrected by -log(S Q(m)), plus the rated movie's
    own logit: [U, S] logits instead of [U, catalogue]. `negatives` (a test's) replaces the
    step's `sample_negatives()`.

    tfrs.tasks.Retrieval computes the same loss per example (the rated movie first among the
    shared samples, logQ-corrected, accidental hits removed: tests/models/test_models.py), but from
    [B, 1 + S] logits: it has no per-user normaliser, and its in-batch candidates would make the
    batch's other rated movies negatives too, a different estimator."""
    user = tf.concat([factors, self.user_ranking_embedding(distinct)], axis=-1)
    if self.ranking_negatives:
      candidates = self.sample_negatives() if negatives is None else negatives
      correction = self._log_expected_samples(candidates)
    else:
      candidates = tf.range(self.num_movies, dtype=tf.int64)
      correction = 0.0
    vectors, bias = self.ranking_movies({features.MOVIE_INDEX: candidates})
    normaliser = tf.reduce_logsumexp(
        tf.matmul(user, vectors, transpose_b=True) + (bias - correction), axis=1)
    # The rated movie's logit, from its rows (cheaper to differentiate than a gather_nd from
    # [U, M] logits, whose gradient is a dense [U, M] scatter).
    picked_vector, picked_bias = self.ranking_movies({features.MOVIE_INDEX: movies})
    picked = tf.reduce_sum(tf.gather(user, position) * picked_vector, axis=-1) + picked_bias
    per_example = tf.gather(normaliser, position)
    if self.ranking_negatives:
      per_example = self._without_accidental_hits(per_example, picked, movies, candidates)
    return tf.reduce_mean(per_example - picked)

  def _log_expected_samples(self, movies):
    """log(S Q(m)) of `movies`: the logQ correction of a sampled logit."""
    return (tf.gather(self._negative_log_probability, movies)
            + float(np.log(self.ranking_negatives)))

  def _without_accidental_hits(self, sampled, picked, movies, candidates):
    """log(exp(picked) + the sampled normaliser without the samples of the rated movie
    itself), per example: `sampled` [B] is log sum_j exp(logit_j - log(S Q_j)) over all S
    candidates, a sample equal to the example's movie counted k times there."""
    hits = tf.gather(tf.math.bincount(candidates, minlength=self.num_movies,
                                      maxlength=self.num_movies, dtype=tf.float32), movies)
    own = picked - self._log_expected_samples(movies) + tf.math.log(tf.maximum(hits, 1.0))
    others = sampled + tf.math.log(tf.maximum(
        1.0 - tf.where(hits > 0, tf.exp(tf.minimum(own - sampled, 0.0)), 0.0), 1e-30))
    return tf.reduce_logsumexp(tf.stack([others, picked]), axis=0)

  def profile_inputs(self, movie_inputs, ratings):
    """Folds in the users of a request's rows [B] from their `ratings` [B, None] of the movies
    `movie_inputs` (flat): each row's p_u, r_u and b_u minimise the training loss over its
    ratings with every other weight fixed and N(u) the movies sent (SVD++'s fold-in; the
    ranking softmax over the whole catalogue, each sent movie a pick, as in training), plus
    `new_user_prior` x the squared distance from the mean trained user (`new_user_bias_prior`
    x b_u's). The loss is convex in them; `FOLD_IN_STEPS` Newton steps from that mean solve
    it. Movies the model has no ratings of tell it nothing and are left out; a row left with
    none has no profile."""
    movies = movie_inputs[features.MOVIE_INDEX]
    known = movies < self.num_movies - 1  # the last row: movies unseen in training
    rows = tf.boolean_mask(ratings.value_rowids(), known)
    movies, values = tf.boolean_mask(movies, known), tf.boolean_mask(ratings.flat_values, known)
    batch = ratings.nrows()
    total = lambda x: tf.math.unsorted_segment_sum(x, rows, batch)
    counts = total(tf.ones_like(values))
    implicit = total(tf.gather(self.implicit_embedding.embeddings, movies)) * tf.math.rsqrt(
        tf.maximum(counts, 1.0))[:, tf.newaxis]
    rating_vectors = tf.gather(self.movie_embedding.embeddings, movies)
    ranking_width = self.user_ranking_embedding.output_dim
    # The rating's gradient in [p, r, b] per sent rating (constant: the rating is linear in them).
    jacobian = tf.concat([rating_vectors, tf.zeros([tf.size(movies), ranking_width]),
                          tf.ones([tf.size(movies), 1])], axis=-1)
    rating_hessian = 2.0 * total(jacobian[:, :, tf.newaxis] * jacobian[:, tf.newaxis, :])
    if self.retrieval_weight:
      vectors, ranking_bias = self.ranking_movies(
          {features.MOVIE_INDEX: tf.range(self.num_movies, dtype=tf.int64)})
      picked = total(tf.gather(vectors, movies))
    width = self.movie_embedding.output_dim
    prior = tf.concat([tf.fill([width + ranking_width], self.new_user_prior),
                       [self.new_user_bias_prior]], axis=0)
    start = tf.tile(self.new_user_mean[tf.newaxis, :], [batch, 1])
    pad = lambda x: tf.pad(x, [[0, 0]] + [[0, 1]] * (len(x.shape) - 1))  # no ranking term in b
    offset = (self.global_bias + tf.gather(self.movie_bias.embeddings[:, 0], movies)
              - values)
    prior_hessian = rating_hessian + 2.0 * tf.linalg.diag(prior)  # the same at every step
    x = start
    for _ in range(self.FOLD_IN_STEPS):
      factors = x[:, :width] + implicit
      error = offset + tf.gather(x[:, -1], rows) + tf.reduce_sum(
          rating_vectors * tf.gather(factors, rows), axis=-1)
      gradient = 2.0 * total(error[:, tf.newaxis] * jacobian) + 2.0 * prior * (x - start)
      hessian = prior_hessian
      if self.retrieval_weight:
        user = tf.concat([factors, x[:, width:-1]], axis=-1)
        chosen = tf.nn.softmax(tf.matmul(user, vectors, transpose_b=True) + ranking_bias)
        mean = tf.matmul(chosen, vectors)
        covariance = (tf.matmul(tf.transpose(vectors)[tf.newaxis] * chosen[:, tf.newaxis, :],
                                vectors) - mean[:, :, tf.newaxis] * mean[:, tf.newaxis, :])
        gradient += self.retrieval_weight * pad(counts[:, tf.newaxis] * mean - picked)
        hessian += self.retrieval_weight * pad(counts[:, tf.newaxis, tf.newaxis] * covariance)
      x -= tf.linalg.solve(hessian, gradient[:, :, tf.newaxis])[:, :, 0]
    return {self.FOLDED_FACTORS: x[:, :width] + implicit, self.FOLDED_RANKING: x[:, width:-1],
            self.FOLDED_BIAS: x[:, -1], self.HAS_PROFILE: counts > 0}

  def after_training(self) -> None:
    self.set_new_user_mean()
    self.fill_unknown_users()

  def _users_by_history(self) -> Tuple[tf.Tensor, tf.Tensor]:
    """(user indices with training ratings [K], those without [U])."""
    counts = self.history_splits[1:] - self.history_splits[:-1]
    return (tf.cast(tf.where(counts > 0)[:, 0], tf.int64),
            tf.cast(tf.where(counts == 0)[:, 0], tf.int64))

  def set_new_user_mean(self) -> None:
    """The fold-in's start and prior (`new_user_mean`): the mean trained user's p_u, r_u and
    b_u."""
    known, _ = self._users_by_history()
    if tf.size(known) == 0:
      return
    self.new_user_mean.assign(tf.reduce_mean(tf.concat(
        [self.user_embedding(known), self.user_ranking_embedding(known), self.user_bias(known)],
        axis=-1), axis=0))

  def fill_unknown_users(self) -> None:
    """After training: users without training ratings (the OOV row, which training never
    updates) take the mean trained user's factors and biases, so an unseen user is rated as an
    average user would rate the movie (global + mean b_u + b_m + <mean p_u, q_m>) rather than
    from an untrained row."""
    known, unknown = self._users_by_history()
    unknown = unknown[:, tf.newaxis]  # scatter indices
    if tf.size(unknown) == 0 or tf.size(known) == 0:
      return
    for table, mean in (
        (self.user_embedding.embeddings, tf.reduce_mean(self._user_factors(known), axis=0)),
        (self.user_bias.embeddings, tf.reduce_mean(self.user_bias(known), axis=0)),
        (self.user_ranking_embedding.embeddings,
         tf.reduce_mean(self.user_ranking_embedding(known), axis=0))):
      table.scatter_nd_update(unknown, tf.tile(mean[tf.newaxis, :], [tf.shape(unknown)[0], 1]))
