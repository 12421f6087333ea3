"""The slice features the Evaluator reports: bucket names and genres, as computed in-graph."""

import tensorflow as tf

from components.evaluation import slicing


def test_age_groups_follow_the_preprocessing_buckets():
  assert slicing.age_group_names() == (
      'under 18', '18-24', '25-34', '35-44', '45-49', '50-55', '56+')


def test_bucket_names_by_count():
  counts = tf.constant([0, 1, 19, 20, 99, 100, 5000], tf.int64)
  names = slicing.bucket_names(counts, slicing.MOVIE_POPULARITY_BUCKETS).numpy().tolist()
  assert names == [b'unseen (0)', b'rare (1-19)', b'rare (1-19)', b'common (20-99)',
                   b'common (20-99)', b'popular (100+)', b'popular (100+)']
  users = slicing.bucket_names(tf.constant([0, 49, 50], tf.int64), slicing.USER_ACTIVITY_BUCKETS)
  assert users.numpy().tolist() == [b'cold (0)', b'light (1-49)', b'heavy (50+)']


def test_a_movie_counts_in_each_of_its_genres_once():
  genres = slicing.genres_of(tf.constant(['Action|Comedy', 'Drama'])).numpy()
  assert genres.shape == (2, 12)
  assert set(genres[0].tolist()) == {b'Action', b'Comedy'}  # padding repeats a genre
  assert set(genres[1].tolist()) == {b'Drama'}
