"""bench/synth.py: seeded, MovieLens-shaped, learnable synthetic data our ingestion reads."""

import filecmp
import os

import numpy as np
import pandas as pd

from bench import synth
from components.data import movielens_formats


def test_synthetic_data_is_seeded_shaped_like_movielens_and_readable(tmp_path):
  first, again, other = (str(tmp_path / name) for name in ('a', 'b', 'c'))
  result = synth.write(first, 60_000, seed=7)
  synth.write(again, 60_000, seed=7)
  synth.write(other, 60_000, seed=8)
  for name in ('ratings.csv', 'movies.csv'):
    assert filecmp.cmp(os.path.join(first, name), os.path.join(again, name), shallow=False)
  assert not filecmp.cmp(os.path.join(first, 'ratings.csv'), os.path.join(other, 'ratings.csv'),
                         shallow=False)
  assert sorted(os.listdir(first)) == ['movies.csv', 'ratings.csv']  # nothing half-written

  users, movies = synth.sizes(60_000)
  assert result == {'ratings': 60_000, 'users': users, 'movies': movies}
  assert synth.sizes(25_000_000) == (162338, 62423)  # like ML-25M: 162,541 users, 62,423 movies

  data = movielens_formats.read_movielens(first, movielens_formats.ML_LATEST)  # the real reader
  assert len(data.ratings.rating) == 60_000 and len(data.movies) == movies
  ratings = pd.DataFrame({'user': data.ratings.user_id, 'movie': data.ratings.movie_id,
                          'rating': data.ratings.rating})
  assert not ratings.duplicated(['user', 'movie']).any()
  assert ratings.groupby('user').size().min() >= synth.MIN_RATINGS_PER_USER
  assert set(np.unique(ratings.rating)) <= set(np.arange(0.5, 5.01, 0.5))
  # Power laws: a tenth of the movies takes a large share of the ratings (ML-100K: 43%; 34% in
  # 100K synthetic ratings, 46% in 1M; smaller sets saturate, as a user rates a movie once),
  # and a few users rate far more than the typical one.
  popularity = ratings.movie.value_counts().to_numpy()
  assert popularity[:len(popularity) // 10].sum() > 0.2 * len(ratings)
  activity = ratings.groupby('user').size()
  assert activity.max() > 3 * activity.median()
  # Learnable: user and movie biases from 80% of the ratings beat the global mean on the rest.
  held_out = np.random.default_rng(0).random(len(ratings)) < 0.2
  train, test = ratings[~held_out], ratings[held_out]
  mean = train.rating.mean()
  user_bias = (train.rating - mean).groupby(train.user).sum() / (
      train.groupby('user').size() + 10)
  movie_bias = (train.rating - mean - train.user.map(user_bias)).groupby(train.movie).sum() / (
      train.groupby('movie').size() + 10)
  predicted = mean + test.user.map(user_bias).fillna(0) + test.movie.map(movie_bias).fillna(0)
  rmse = lambda p: float(np.sqrt(((test.rating - p) ** 2).mean()))
  assert rmse(predicted) < 0.95 * rmse(mean)
