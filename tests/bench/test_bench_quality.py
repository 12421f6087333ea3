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


def test_ranking_metrics_follow_microsoft_recommenders_definitions():
  recommended = {'a': ['1', '2', '3'], 'b': ['4', '5', '6']}
  relevant = {'a': {'1', '3', '9'}, 'b': {'7'}}
  result = quality.ranking_metrics(recommended, relevant, k=3, num_train_movies=10)
  assert result['precision@3'] == pytest.approx((2 / 3 + 0) / 2)
  assert result['recall@3'] == pytest.approx((2 / 3 + 0) / 2)
  discount = 1 / np.log2(np.arange(2, 5))
  assert result['ndcg@3'] == pytest.approx((discount[0] + discount[2]) / discount.sum() / 2)
  assert result['map'] == pytest.approx((1 + 2 / 3) / 3 / 2)  # divided by |relevant|
  assert result['coverage'] == pytest.approx(0.6) and result['users'] == 2


def test_item_mean_falls_back_to_the_global_mean():
  predicted = quality.item_mean(np.array([1, 1, 2]), np.array([4.0, 2.0, 5.0]), np.array([1, 2, 7]))
  np.testing.assert_allclose(predicted, [3.0, 5.0, 11.0 / 3])


@pytest.mark.parametrize('module', ['quality', 'tune'])
def test_a_missing_data_folder_is_one_clear_error(module, tmp_path, capsys):
  from bench import tune  # pylint: disable=import-outside-toplevel
  main = {'quality': quality.main, 'tune': tune.main}[module]
  with pytest.raises(SystemExit) as stopped:
    main(['--data-dir', str(tmp_path / 'nowhere'), '--models', 'collaborative_filtering'])
  assert stopped.value.code == 2
  assert (f'--data-dir: {tmp_path / "nowhere"}: is not a folder (or set MOVIELENS_100K_DIR)'
          in capsys.readouterr().err)
