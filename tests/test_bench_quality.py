"""The quality benchmark's own arithmetic: scores and the bias baseline."""

import numpy as np
import pytest

from bench import quality


def test_scores_clip_to_the_scale_and_agree():
  result = quality.scores(np.array([0.0, 3.0, 6.0]), np.array([1.0, 4.0, 5.0]))
  assert result['n'] == 3
  assert result['mae'] == pytest.approx(1.0 / 3)
  assert result['mse'] == pytest.approx(1.0 / 3)
  assert result['rmse'] == pytest.approx(np.sqrt(1.0 / 3))


def test_bias_baseline_shrinks_towards_the_mean():
  users = np.array([1, 1, 2, 2])
  movies = np.array([10, 20, 10, 20])
  ratings = np.array([5.0, 3.0, 5.0, 3.0])  # movie 10 is liked, users are alike
  predicted = quality.bias_baseline(users, movies, ratings, np.array([1, 3]), np.array([10, 99]),
                                    user_reg=0.0, movie_reg=0.0)
  assert predicted[0] == pytest.approx(5.0)   # mean 4 + movie bias 1 + user bias 0
  assert predicted[1] == pytest.approx(4.0)   # unknown user and movie: the mean
  shrunk = quality.bias_baseline(users, movies, ratings, np.array([1]), np.array([10]),
                                 user_reg=0.0, movie_reg=2.0)
  assert 4.0 < shrunk[0] < 5.0
