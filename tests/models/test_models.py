"""Both models on tiny data: building, a few training steps, determinism, unseen IDs."""

import numpy as np
import pytest
import tensorflow as tf

from components.models import collaborative_filtering
from components.models import content_based
from components.data import features as f
from components.models import histories
from components.models import model_io

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


def _build(name, examples, demographics=True, retrieval_weight=0.5, score_all_users=False,
           **cb_ranking):
  common = dict(embedding_dim=4, l2=1e-4, global_mean=3.0, seed=7)
  if name == 'cf':
    return collaborative_filtering.CollaborativeFilteringModel(
        NUM_USERS, NUM_MOVIES, history=(examples.features[f.USER_INDEX],
                                        examples.features[f.MOVIE_INDEX]),
        retrieval_dim=3, retrieval_weight=retrieval_weight, score_all_users=score_all_users,
        **common)
  content = {f.GENRE_IDS: np.zeros((NUM_MOVIES, f.MAX_GENRES), np.int64),
             f.TITLE_TOKEN_IDS: np.zeros((NUM_MOVIES, f.MAX_TITLE_TOKENS), np.int64),
             f.RELEASE_BUCKET: np.zeros(NUM_MOVIES, np.int64)}
  for name, table in content.items():
    table[examples.features[f.MOVIE_INDEX]] = examples.features[name]
  return content_based.ContentBasedModel(
      VOCAB, demographics, history=(examples.features[f.USER_INDEX],
                                    examples.features[f.MOVIE_INDEX], examples.labels),
      movie_content=content, retrieval_weight=retrieval_weight, **cb_ranking, **common)


def _train(name, demographics=True, examples=None, epochs=3, retrieval_weight=0.5,
           score_all_users=False, **cb_ranking):
  tf.keras.utils.set_random_seed(7)
  examples = examples or _examples(demographics=demographics)
  model = _build(name, examples, demographics, retrieval_weight, score_all_users, **cb_ranking)
  model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss='mse')
  inputs = dict(examples.features)
  if name == 'cb':
    inputs[model.HISTORY_POSITION] = model.history_positions(len(examples))
  history = model.fit(inputs, examples.labels, batch_size=16, epochs=epochs, shuffle=True,
                      verbose=0)
  return model, examples, history.history['loss']


@pytest.mark.parametrize('name, demographics, score_all_users',
                         [('cf', True, False), ('cf', True, True), ('cb', True, False),
                          ('cb', False, False)])
def test_trains_and_is_deterministic_for_a_seed(name, demographics, score_all_users):
  model_a, examples, losses = _train(name, demographics, score_all_users=score_all_users)
  model_b, _, _ = _train(name, demographics, score_all_users=score_all_users)
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


@pytest.mark.parametrize('score_all_users', [False, True])
@pytest.mark.parametrize('retrieval_weight', [0.5, 0.0])
def test_cf_ranking_head_learns_which_movies_users_pick(retrieval_weight, score_all_users):
  # Every user rated movies 0-2 (badly); nobody rated movies 5-7. A rating-only model has no
  # reason to rank the picked movies first; the ranking head does.
  users = np.repeat(np.arange(NUM_USERS - 1), 4)
  movies = np.tile([0, 1, 2, 3], NUM_USERS - 1)
  columns = {f.USER_INDEX: users.astype(np.int64), f.MOVIE_INDEX: movies.astype(np.int64)}
  labels = np.where(movies < 3, 1.0, 5.0).astype(np.float32)
  examples = model_io.canonical_order(columns, labels)
  model, _, _ = _train('cf', examples=examples, epochs=40, retrieval_weight=retrieval_weight,
                       score_all_users=score_all_users)
  user, offset = model.ranking_user({f.USER_INDEX: tf.constant([0], tf.int64)})
  vectors, bias = model.ranking_movies({f.MOVIE_INDEX: tf.range(NUM_MOVIES - 1, dtype=tf.int64)})
  scores = (offset[:, None] + tf.matmul(user, vectors, transpose_b=True) + bias).numpy()[0]
  picked_first = scores[:3].min() > scores[5:].max()
  assert picked_first == (retrieval_weight > 0)


def _picks_examples():
  """Every user rated movies 0-2 badly and movie 3 well; nobody rated movies 5-7. Each movie
  has its own genre and title word, so content tells them apart."""
  users = np.repeat(np.arange(NUM_USERS - 1), 4)
  movies = np.tile([0, 1, 2, 3], NUM_USERS - 1)
  pad = lambda ids, width: np.pad(ids[:, None], ((0, 0), (0, width - 1)))
  columns = {f.USER_INDEX: users, f.MOVIE_INDEX: movies,
             f.GENRE_IDS: pad(movies % 6 + 1, f.MAX_GENRES),
             f.TITLE_TOKEN_IDS: pad(movies + 1, f.MAX_TITLE_TOKENS),
             f.RELEASE_BUCKET: movies % f.NUM_RELEASE_BUCKETS,
             f.AGE_BUCKET: users % 7, f.GENDER_ID: users % 2, f.OCCUPATION_ID: users % 4,
             f.ZIP_PREFIX_ID: users % 5}
  labels = np.where(movies < 3, 1.0, 5.0).astype(np.float32)
  return model_io.canonical_order({k: v.astype(np.int64) for k, v in columns.items()}, labels)


@pytest.mark.parametrize('exact_ranking_movies', [100, 0])  # exact softmax; in-batch (tfrs)
@pytest.mark.parametrize('retrieval_weight', [1.0, 0.0])
def test_cb_ranking_head_learns_which_movies_users_pick(retrieval_weight, exact_ranking_movies):
  examples = _picks_examples()
  model, _, losses = _train('cb', examples=examples, epochs=40,
                            retrieval_weight=retrieval_weight,
                            exact_ranking_movies=exact_ranking_movies, movie_id_dropout=0.1)
  assert np.isfinite(losses).all()
  assert model.ranks_by_rating == (retrieval_weight == 0)
  users = {name: tf.constant(examples.features[name][:1]) for name in model.user_feature_names}
  user, offset = model.ranking_user(users)
  movies = tf.range(NUM_MOVIES - 1, dtype=tf.int64)
  movie_inputs = {name: tf.gather(model.movie_content[name], movies)
                  for name in (f.GENRE_IDS, f.TITLE_TOKEN_IDS, f.RELEASE_BUCKET)}
  vectors, bias = model.ranking_movies({**movie_inputs, f.MOVIE_INDEX: movies})
  scores = (offset[:, None] + tf.matmul(user, vectors, transpose_b=True) + bias).numpy()[0]
  picked_first = scores[:3].min() > scores[5:].max()
  assert picked_first == (retrieval_weight > 0)


def test_cb_scores_a_movie_without_training_ratings_from_its_content():
  # Movie 3 (liked) and a new movie with movie 3's content but the out-of-vocabulary ID: with
  # ID dropout in training, the new one is rated and ranked like movie 3, above movies 0-2.
  examples = _picks_examples()
  model, _, _ = _train('cb', examples=examples, epochs=40, retrieval_weight=1.0,
                       exact_ranking_movies=100, movie_id_dropout=0.3)
  content = {name: tf.gather(model.movie_content[name], [0, 1, 2, 3, 3])
             for name in (f.GENRE_IDS, f.TITLE_TOKEN_IDS, f.RELEASE_BUCKET)}
  movies = {**content, f.MOVIE_INDEX: tf.constant([0, 1, 2, 3, NUM_MOVIES - 1], tf.int64)}
  users = {name: tf.constant(np.repeat(examples.features[name][:1], 5))
           for name in model.user_feature_names}
  ratings = model({**users, **movies}).numpy()
  assert ratings[4] > ratings[:3].max()
  user, _ = model.ranking_user({name: values[:1] for name, values in users.items()})
  vectors, bias = model.ranking_movies(movies)
  scores = (tf.matmul(user, vectors, transpose_b=True) + bias).numpy()[0]
  assert scores[4] > scores[:3].max()


def test_cb_reads_a_new_movie_s_title_word_of_one_training_movie_as_an_unknown_word():
  # 1 is in two movies' titles, 2, 3 and 4 in one each: they would be second movie IDs.
  titles = np.array([[1, 2, 0], [1, 3, 0], [4, 0, 0], [0, 0, 0]])
  mapping = content_based.shared_title_tokens(titles, vocab_size=6, min_movies=2)
  np.testing.assert_array_equal(mapping, [0, 1, 5, 5, 5, 5])
  np.testing.assert_array_equal(content_based.shared_title_tokens(titles, 6, 1),
                                [0, 1, 2, 3, 4, 5])
  examples = _examples()
  model = _build('cb', examples, min_title_token_movies=2)
  used = np.bincount(np.unique(np.stack([np.repeat(np.arange(NUM_MOVIES), f.MAX_TITLE_TOKENS),
                                         model.movie_content[f.TITLE_TOKEN_IDS].numpy().ravel()],
                                        1), axis=0)[:, 1], minlength=VOCAB[f.TITLE_TOKEN_IDS])
  single = int(np.flatnonzero(used == 1)[0])  # a word of one movie's title
  oov = VOCAB[f.TITLE_TOKEN_IDS] - 1
  features = lambda token, movie: model.movie_features({
      f.GENRE_IDS: tf.zeros([1, f.MAX_GENRES], tf.int64), f.RELEASE_BUCKET: tf.zeros([1], tf.int64),
      f.MOVIE_INDEX: tf.constant([movie], tf.int64),
      f.TITLE_TOKEN_IDS: tf.constant([[token] + [0] * (f.MAX_TITLE_TOKENS - 1)], tf.int64)})
  new_movie = NUM_MOVIES - 1  # the OOV index
  np.testing.assert_array_equal(features(single, new_movie).numpy(),
                                features(oov, new_movie).numpy())
  # A known movie keeps all its title words: there they help (pipeline/configs.py).
  assert not np.array_equal(features(single, 0).numpy(), features(oov, 0).numpy())


def test_cf_rating_uses_what_the_user_rated():
  # Users 0 and 1 differ only in history: zeroing user 1's history would change nothing if the
  # implicit part were unused.
  model, examples, _ = _train('cf', epochs=5)
  pair = {f.USER_INDEX: tf.constant([0, 1], tf.int64), f.MOVIE_INDEX: tf.constant([2, 2], tf.int64)}
  before = model(pair).numpy()
  model.history_scale.assign(tf.zeros_like(model.history_scale))
  assert not np.allclose(before, model(pair).numpy())


def test_cf_unknown_user_is_rated_as_the_mean_trained_user():
  model, examples, _ = _train('cf', epochs=5)
  known = tf.constant(np.unique(examples.features[f.USER_INDEX]), tf.int64)
  movies = tf.range(NUM_MOVIES - 1, dtype=tf.int64)
  ratings_of = lambda user: model({f.USER_INDEX: tf.fill(tf.shape(movies), user),
                                   f.MOVIE_INDEX: movies}).numpy()
  before = ratings_of(tf.constant(NUM_USERS - 1, tf.int64))
  known_before = [ratings_of(u) for u in known]
  model.fill_unknown_users()
  after = ratings_of(tf.constant(NUM_USERS - 1, tf.int64))
  # The mean user's rating of a movie is the mean of the trained users' ratings of it (the
  # model is linear in the user's factors and bias); known users are untouched.
  known_after = [ratings_of(u) for u in known]
  np.testing.assert_array_equal(known_before, known_after)
  np.testing.assert_allclose(after, np.mean(known_after, axis=0), rtol=1e-5)
  assert not np.allclose(before, after)


@pytest.mark.parametrize('retrieval_weight', [0.5, 0.0])
def test_cf_fold_in_minimises_the_training_loss_over_a_new_user_s_own_weights(retrieval_weight):
  """A new user's (p_u, r_u, b_u) from the ratings sent are the minimum of the training loss
  over those ratings (squared error + retrieval_weight x the catalogue softmax of each sent
  movie, N(u) the movies sent) plus the priors' pull to the mean trained user, written here
  with tf.GradientTape: its gradient there is 0. Movies the model never trained on are left
  out, and a row left with none has no profile; the rating and ranking read the folded user."""
  model, _, _ = _train('cf', epochs=5, retrieval_weight=retrieval_weight)
  model.after_training()
  model.new_user_prior, model.new_user_bias_prior = 1.0, 3.0  # b_u's pull its own
  unseen = NUM_MOVIES - 1
  movies, ratings = [0, 3, 5], [5.0, 2.0, 4.0]
  rows = tf.RaggedTensor.from_row_lengths(
      ratings + ratings + [1.0] + [3.0], [3, 4, 1])  # row 1: row 0's and an unseen movie
  sent = tf.constant(movies + movies + [unseen] + [unseen], tf.int64)
  folded = model.profile_inputs({f.MOVIE_INDEX: sent}, rows)
  np.testing.assert_array_equal(folded[model.HAS_PROFILE], [True, True, False])
  for name in (model.FOLDED_FACTORS, model.FOLDED_RANKING, model.FOLDED_BIAS):
    np.testing.assert_allclose(folded[name][0], folded[name][1], rtol=1e-5, atol=1e-6)

  dim = model.movie_embedding.output_dim
  model.ranking_movies({f.MOVIE_INDEX: tf.range(NUM_MOVIES, dtype=tf.int64)})  # built if unused
  table = lambda layer: tf.constant(layer.embeddings.numpy())
  q, y, b_m = table(model.movie_embedding), table(model.implicit_embedding), table(model.movie_bias)
  s, c = table(model.movie_ranking_embedding), table(model.movie_ranking_bias)
  implicit = tf.reduce_sum(tf.gather(y, movies), axis=0) / np.sqrt(len(movies))
  mean = model.new_user_mean.numpy()

  def loss(p, r, b):
    factors = p + implicit
    error = (model.global_bias + b + tf.gather(b_m[:, 0], movies)
             + tf.linalg.matvec(tf.gather(q, movies), factors) - ratings)
    logits = tf.linalg.matvec(tf.concat([q, s], 1), tf.concat([factors, r], 0)) + c[:, 0]
    softmax = tf.reduce_sum(tf.reduce_logsumexp(logits) - tf.gather(logits, movies))
    prior = tf.reduce_sum((p - mean[:dim]) ** 2) + tf.reduce_sum((r - mean[dim:-1]) ** 2)
    return (tf.reduce_sum(error ** 2) + retrieval_weight * softmax
            + model.new_user_prior * prior + model.new_user_bias_prior * (b - mean[-1]) ** 2)

  weights = [tf.Variable(folded[model.FOLDED_FACTORS][0] - implicit),
             tf.Variable(folded[model.FOLDED_RANKING][0]), tf.Variable(folded[model.FOLDED_BIAS][0])]
  with tf.GradientTape() as tape:
    at_fold_in = loss(*weights)
  for gradient in tape.gradient(at_fold_in, weights):
    np.testing.assert_allclose(gradient, np.zeros_like(gradient), atol=1e-4)
  assert at_fold_in < loss(mean[:dim], mean[dim:-1], mean[-1])

  new_user = tf.constant([NUM_USERS - 1] * 3, tf.int64)
  inputs = {f.USER_INDEX: new_user, f.MOVIE_INDEX: tf.constant([2, 2, 2], tf.int64), **folded}
  want = (model.global_bias + weights[2] + b_m[2, 0]
          + tf.tensordot(q[2], folded[model.FOLDED_FACTORS][0], 1))
  rated = model(inputs).numpy()
  np.testing.assert_allclose(rated[:2], [want, want], rtol=1e-5)
  np.testing.assert_allclose(rated[2], model({f.USER_INDEX: new_user[:1],
                                              f.MOVIE_INDEX: tf.constant([2], tf.int64)})[0],
                             rtol=1e-6)  # no profile: the stored (mean) user
  vector, _ = model.ranking_user(inputs)
  np.testing.assert_allclose(vector[0], tf.concat([folded[model.FOLDED_FACTORS][0],
                                                   folded[model.FOLDED_RANKING][0]], 0))
  np.testing.assert_allclose(vector[2], model.ranking_user({f.USER_INDEX: new_user[:1]})[0][0])


def test_canonical_order_does_not_depend_on_the_read_order():
  examples = _examples()
  shuffled = np.random.default_rng(3).permutation(N)
  again = model_io.canonical_order({k: v[shuffled] for k, v in examples.features.items()},
                                   examples.labels[shuffled])
  for name, values in examples.features.items():
    np.testing.assert_array_equal(values, again.features[name])
  np.testing.assert_array_equal(examples.labels, again.labels)


def test_cf_ranking_loss_is_the_per_example_catalogue_softmax():
  """In training, the model adds its ranking loss, normalised once per distinct user; the loss
  Keras minimises must be the rating loss plus the plain per-example softmax cross entropy over
  the whole catalogue, and outside training no ranking loss is added."""
  model, examples, _ = _train('cf', epochs=1)
  x = {name: tf.constant(values) for name, values in examples.features.items()}
  y = tf.constant(examples.labels)
  in_training = float(model.compute_loss(x, y, model(x, training=True)))
  rating_only = float(model.compute_loss(x, y, model(x)))
  user, offset = model.ranking_user(x)
  movies, bias = model.ranking_movies({f.MOVIE_INDEX: tf.range(NUM_MOVIES, dtype=tf.int64)})
  logits = offset[:, tf.newaxis] + tf.matmul(user, movies, transpose_b=True) + bias
  softmax = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=x[f.MOVIE_INDEX], logits=logits))
  assert len(np.unique(examples.features[f.USER_INDEX])) < len(examples)  # users repeat
  assert float(softmax) > 0.1
  assert in_training == pytest.approx(rating_only + model.retrieval_weight * float(softmax),
                                      rel=1e-5)


@pytest.mark.parametrize('retrieval_weight', [0.5, 0.0])
def test_cf_catalogue_step_has_the_per_example_steps_loss_and_gradients(retrieval_weight):
  """Scoring every user against every movie in a training step (`score_all_users`, with its
  hand-written gradient) must give the per-example step's predictions, loss and gradients for
  the same weights, on a batch where users repeat and some users have no example."""
  examples = _examples()
  per_example = _build('cf', examples, retrieval_weight=retrieval_weight)
  catalogue = _build('cf', examples, retrieval_weight=retrieval_weight, score_all_users=True)
  assert catalogue._catalogue_training and not per_example._catalogue_training  # pylint: disable=protected-access
  batch = slice(3, 23)
  x = {name: tf.constant(values[batch]) for name, values in examples.features.items()}
  y = tf.constant(examples.labels[batch])
  assert 0 < len(np.unique(x[f.USER_INDEX])) < min(NUM_USERS - 1, 20)
  tables = ('user_embedding', 'movie_embedding', 'implicit_embedding', 'user_bias',
            'movie_bias', 'user_ranking_embedding', 'movie_ranking_embedding',
            'movie_ranking_bias')
  variables = lambda model: dict({name: getattr(model, name).embeddings for name in tables
                                  if getattr(model, name).built}, global_bias=model.global_bias)
  results = []
  for model in (per_example, catalogue):
    model(x, training=True)
    for name, variable in variables(model).items():  # non-zero, the same in both models
      seed = sum(map(ord, name))
      variable.assign(np.random.default_rng(seed).standard_normal(variable.shape) * 0.3)
    assert len(variables(model)) == len(model.trainable_variables)
    with tf.GradientTape() as tape:
      predictions = model(x, training=True)
      loss = tf.reduce_mean(tf.square(predictions - y)) + tf.add_n(model.losses)
    gradients = tape.gradient(loss, variables(model))
    results.append((predictions.numpy(), float(loss), {
        name: tf.convert_to_tensor(g).numpy() for name, g in gradients.items()
        if g is not None}))
  (want_predictions, want_loss, want_gradients), (predictions, loss, gradients) = results
  np.testing.assert_allclose(predictions, want_predictions, rtol=1e-5, atol=1e-5)
  assert loss == pytest.approx(want_loss, rel=1e-5)
  assert sorted(gradients) == sorted(want_gradients)
  assert ('user_ranking_embedding' in gradients) == (retrieval_weight > 0)
  for name, want in want_gradients.items():
    np.testing.assert_allclose(gradients[name], want, rtol=1e-4, atol=1e-6, err_msg=name)


def test_cf_sampled_ranking_loss_estimates_the_catalogue_softmax():
  """With sampled negatives (logQ-corrected, the rated movie's own samples removed), the ranking
  loss is an estimate of the exact one: with many samples it must match the per-example
  catalogue softmax; counting the rated movie twice (its samples kept) would be ~5% off here."""
  examples = _examples()
  exact = _build('cf', examples)
  sampled = collaborative_filtering.CollaborativeFilteringModel(
      NUM_USERS, NUM_MOVIES, history=(examples.features[f.USER_INDEX],
                                      examples.features[f.MOVIE_INDEX]),
      retrieval_dim=3, embedding_dim=4, l2=1e-4, global_mean=3.0, seed=7,
      ranking_negatives=50_000)
  x = {name: tf.constant(values) for name, values in examples.features.items()}
  for model in (exact, sampled):
    model(x)
    model.compile(loss='mse')
  sampled.set_weights(exact.get_weights())
  y = tf.constant(examples.labels)
  ranking_loss = lambda model: float(model.compute_loss(x, y, model(x, training=True))
                                     - model.compute_loss(x, y, model(x)))
  assert ranking_loss(sampled) == pytest.approx(ranking_loss(exact), rel=0.01)
  assert ranking_loss(exact) > 1.0  # about 0.5 x log(9) at initialisation


@pytest.mark.parametrize('negatives', [0, 20])  # the exact catalogue softmax; a sampled one
def test_cf_ranking_loss_equals_tfrs_retrieval_per_example(negatives):
  """CF's ranking loss is tfrs.tasks.Retrieval's, example by example: the rated movie first
  among the candidates (the catalogue, or the step's shared samples with the logQ correction by
  training popularity), accidental hits removed. Retrieval gets sampling probability 1/S for
  the rated movie and Q(m) for a sample: every logit then moves by log S from the model's
  (rated movie uncorrected, samples by log(S Q(m))), which no softmax sees."""
  import tensorflow_recommenders as tfrs  # pylint: disable=import-outside-toplevel
  examples = _examples()
  users, movies = examples.features[f.USER_INDEX], examples.features[f.MOVIE_INDEX]
  model = collaborative_filtering.CollaborativeFilteringModel(
      NUM_USERS, NUM_MOVIES, history=(users, movies), retrieval_dim=3, embedding_dim=4,
      l2=1e-4, global_mean=3.0, seed=7, ranking_negatives=negatives)
  x = {name: tf.constant(values) for name, values in examples.features.items()}
  model(x)
  distinct, position = tf.unique(x[f.USER_INDEX], out_idx=tf.int64)
  factors = model._distinct_user_factors(distinct)  # pylint: disable=protected-access
  if negatives:
    candidates = model.sample_negatives()
    assert len(set(candidates.numpy()) & set(movies)) > 0  # accidental hits to remove
    popularity = np.bincount(movies, minlength=NUM_MOVIES) + 1.0
    probability = tf.constant(popularity / popularity.sum(), tf.float32)
  else:
    candidates = tf.range(NUM_MOVIES, dtype=tf.int64)
  ours = float(model.ranking_loss(distinct, factors, position, x[f.MOVIE_INDEX],
                                  candidates if negatives else None))

  task = tfrs.tasks.Retrieval(remove_accidental_hits=True)  # summed cross entropy
  query, _ = model.ranking_user(x)
  total = 0.0
  for i, movie in enumerate(movies):
    ids = tf.concat([[movie], candidates], axis=0)
    vectors, bias = model.ranking_movies({f.MOVIE_INDEX: ids})
    sampling = (tf.concat([[1.0 / negatives], tf.gather(probability, candidates)], axis=0)
                if negatives else None)
    total += float(task(tf.concat([query[i:i + 1], [[1.0]]], axis=1),
                        tf.concat([vectors, bias[:, tf.newaxis]], axis=1),
                        candidate_sampling_probability=sampling, candidate_ids=ids,
                        compute_metrics=False))
  assert ours == pytest.approx(total / len(movies), rel=1e-5)


def test_cb_stored_profile_leaves_the_predicted_rating_out():
  """A training example's profile is its user's other stored ratings: the same as the profile
  a request carrying those ratings gets (`profile`), and without the leave-out, all of them."""
  model, examples, _ = _train('cb', epochs=1)
  users, movies = examples.features[f.USER_INDEX], examples.features[f.MOVIE_INDEX]
  positions = model.history_positions(len(examples))
  offset, taste = model.stored_profile(tf.constant(users), tf.constant(positions))
  full_offset, full_taste = model.stored_profile(tf.constant(users))
  content = {name: np.asarray(v) for name, v in model.movie_content.items()}
  for i in range(len(examples)):
    for leave_out, (got_offset, got_taste) in ((True, (offset, taste)),
                                               (False, (full_offset, full_taste))):
      others = np.flatnonzero((users == users[i]) & ((movies != movies[i]) | (not leave_out)))
      rated = {name: tf.constant(table[movies[others]]) for name, table in content.items()}
      rated[f.MOVIE_INDEX] = tf.constant(movies[others])
      want_offset, want_taste = model.profile(
          rated, tf.RaggedTensor.from_row_lengths(examples.labels[others], [len(others)]))
      np.testing.assert_allclose(got_offset[i], want_offset[0], rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(got_taste[i], want_taste[0], rtol=1e-5, atol=1e-6)


def test_cb_training_needs_history_positions():
  model, examples, _ = _train('cb', epochs=1)
  with pytest.raises(ValueError, match='history_position'):
    model(examples.features, training=True)
  with pytest.raises(ValueError, match='train on the history'):
    model.history_positions(len(examples) - 1)


def test_user_entries_match_ragged_rows_with_empty_histories():
  """The positions and rows of the distinct users' stored ratings (a binary search per
  position) equal tf.ragged's, including users without ratings and unsorted users."""
  splits = tf.constant([0, 3, 3, 4, 9, 9, 12], tf.int64)   # users 1 and 4 have no ratings
  distinct = tf.constant([3, 1, 0, 5, 4], tf.int64)
  positions, rows, row_splits = histories.user_entries(splits, distinct)
  ragged = tf.ragged.range(tf.gather(splits, distinct), tf.gather(splits, distinct + 1))
  np.testing.assert_array_equal(positions, ragged.flat_values)
  np.testing.assert_array_equal(rows, ragged.value_rowids())
  np.testing.assert_array_equal(row_splits, ragged.row_splits)
  np.testing.assert_array_equal(rows, [0, 0, 0, 0, 0, 2, 2, 2, 3, 3, 3])


def test_sampled_user_entries_cap_each_history_without_bias():
  """At most `cap` stored ratings per user: all of a short history, in order; of a long one
  `cap` distinct ratings, each with probability cap/n over repeated draws; `locate` finds a
  stored position exactly where the sample holds it."""
  lengths = np.array([3, 0, 1, 40, 5000])
  splits = tf.constant(np.concatenate([[0], np.cumsum(lengths)]), tf.int64)
  distinct = tf.constant([4, 0, 1, 3, 2], tf.int64)
  cap, draws = 16, 400
  seen = np.zeros(lengths.sum())
  tf.random.set_seed(3)
  for _ in range(draws):
    positions, rows, row_splits, locate = histories.sampled_user_entries(splits, distinct, cap)
    positions, rows, row_splits = positions.numpy(), rows.numpy(), row_splits.numpy()
    np.testing.assert_array_equal(np.diff(row_splits), [16, 3, 0, 16, 1])
    for row, user in enumerate(distinct.numpy()):
      mine = positions[row_splits[row]:row_splits[row + 1]]
      assert (rows[row_splits[row]:row_splits[row + 1]] == row).all()
      start = np.concatenate([[0], np.cumsum(lengths)])[user]
      if lengths[user] <= cap:
        np.testing.assert_array_equal(mine, start + np.arange(lengths[user]))
      else:
        assert len(set(mine)) == cap and (np.diff(mine) > 0).all()
        assert start <= mine.min() and mine.max() < start + lengths[user]
    seen[positions] += 1
    stored = np.arange(lengths.sum())
    row_of = {int(u): r for r, u in enumerate(distinct.numpy())}
    owner = np.searchsorted(np.cumsum(lengths), stored, side='right')
    found, index = locate(tf.constant(stored, tf.int64),
                          tf.constant([row_of[u] for u in owner], tf.int64))
    np.testing.assert_array_equal(found.numpy(), np.isin(stored, positions))
    np.testing.assert_array_equal(positions[index.numpy()[found.numpy()]], stored[found.numpy()])
  share = seen / draws
  np.testing.assert_array_equal(share[:4], 1.0)
  assert abs(share[4:44] - 16 / 40).max() < 0.12          # 5 standard deviations of 400 draws
  assert abs(share[44:].mean() - 16 / 5000) < 0.0005


def test_cb_profile_cap_only_where_a_history_exceeds_it():
  examples = _examples()
  longest = np.bincount(examples.features[f.USER_INDEX]).max()
  build = lambda cap: content_based.ContentBasedModel(
      VOCAB, True, history=(examples.features[f.USER_INDEX], examples.features[f.MOVIE_INDEX],
                            examples.labels),
      movie_content={f.GENRE_IDS: np.zeros((NUM_MOVIES, f.MAX_GENRES), np.int64),
                     f.TITLE_TOKEN_IDS: np.zeros((NUM_MOVIES, f.MAX_TITLE_TOKENS), np.int64),
                     f.RELEASE_BUCKET: np.zeros(NUM_MOVIES, np.int64)},
      embedding_dim=4, l2=1e-4, global_mean=3.0, seed=7, training_profile_cap=cap)
  assert build(longest)._profile_cap is None  # pylint: disable=protected-access
  assert build(None)._profile_cap is None  # pylint: disable=protected-access
  model = build(2)
  assert model._profile_cap == 2  # pylint: disable=protected-access
  model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss='mse')
  inputs = dict(examples.features, **{model.HISTORY_POSITION: model.history_positions(N)})
  losses = model.fit(inputs, examples.labels, batch_size=16, epochs=3, verbose=0).history['loss']
  assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_cf_history_cap_estimates_the_implicit_sum():
  """With a cap below the longest history, a training step's SVD++ sums average to the exact
  ones (inference always uses every rating); without users beyond it, no cap applies."""
  examples = _examples()
  users, movies = examples.features[f.USER_INDEX], examples.features[f.MOVIE_INDEX]
  longest = np.bincount(users).max()
  build = lambda cap: collaborative_filtering.CollaborativeFilteringModel(
      NUM_USERS, NUM_MOVIES, history=(users, movies), embedding_dim=4, l2=1e-4, global_mean=3.0,
      seed=7, retrieval_dim=3, training_history_cap=cap)
  assert build(longest)._history_cap is None  # pylint: disable=protected-access
  model = build(2)
  model.implicit_embedding.embeddings.assign(
      tf.random.normal(model.implicit_embedding.embeddings.shape, seed=1))
  distinct = tf.constant(np.unique(users))
  exact = model._distinct_user_factors(distinct).numpy()  # pylint: disable=protected-access
  tf.random.set_seed(5)
  draw = tf.function(lambda: model._distinct_user_factors(distinct, training=True))  # pylint: disable=protected-access
  draws = [draw().numpy() for _ in range(3000)]
  assert not np.allclose(draws[0], exact)  # sampled ...
  np.testing.assert_allclose(np.mean(draws, axis=0), exact, atol=0.15)  # ... unbiased (4 sd)
  model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss='mse')
  losses = model.fit(dict(examples.features), examples.labels, batch_size=16, epochs=3,
                     verbose=0).history['loss']
  assert np.isfinite(losses).all() and losses[-1] < losses[0]
