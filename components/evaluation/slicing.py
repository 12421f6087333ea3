"""The slices the Evaluator reports: which ratings fall in which group, computed in-graph.

TFMA slices on raw features (`gender`, `occupation`) and on a model's `transformed_features`
signature, which TFMA calls by that name when a model has it (components/export/signatures.py
exports it). That signature derives, from a serialized rating:

- `age_group`: the user's age group (the ML-1M groups; datasets without demographics have none);
- `genre`: each of the movie's genres (a movie counts in each of its genres);
- `user_activity`: how many ratings the user has in the model's training data (cold / light /
  heavy);
- `movie_popularity`: how many ratings the movie has in the model's training data.
"""

from typing import Sequence, Tuple

import tensorflow as tf

from components.data import features as f

AGE_GROUP, GENRE, USER_ACTIVITY, MOVIE_POPULARITY = (
    'age_group', 'genre', 'user_activity', 'movie_popularity')
SIGNATURE = 'transformed_features'  # the name TFMA looks for

# (lower bound, name) of each bucket, in increasing order; counts of training ratings.
USER_ACTIVITY_BUCKETS = ((0, 'cold (0)'), (1, 'light (1-49)'), (50, 'heavy (50+)'))
MOVIE_POPULARITY_BUCKETS = ((0, 'unseen (0)'), (1, 'rare (1-19)'), (20, 'common (20-99)'),
                            (100, 'popular (100+)'))


def age_group_names() -> Tuple[str, ...]:
  """Names of the age buckets of components/transform/preprocessing.py (index = age_bucket)."""
  bounds = f.AGE_BOUNDARIES
  return ((f'under {bounds[0]}',)
          + tuple(f'{low}-{high - 1}' for low, high in zip(bounds, bounds[1:]))
          + (f'{bounds[-1]}+',))


def bucket_names(counts: tf.Tensor, buckets: Sequence[Tuple[int, str]]) -> tf.Tensor:
  """The name of the bucket of each count [B]."""
  lower = tf.constant([low for low, _ in buckets[1:]], counts.dtype)
  index = tf.searchsorted(lower, counts, side='right')
  return tf.gather(tf.constant([name for _, name in buckets]), index)


def genres_of(genres: tf.Tensor) -> tf.Tensor:
  """[B] genre strings ('Action|Comedy') -> [B, MAX_GENRES] genres; short rows repeat their
  first genre (TFMA counts an example once per distinct slice, so repeats add nothing)."""
  split = tf.strings.split(genres, f.GENRE_SEPARATOR).to_tensor('', shape=[None, f.MAX_GENRES])
  return tf.where(tf.equal(split, ''), split[:, :1], split)


def slicing_specs(has_demographics: bool):
  """TFMA slicing specs: overall, then one per slice feature present for the dataset."""
  import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel
  keys = ([f.GENDER, f.OCCUPATION, AGE_GROUP] if has_demographics else []) + [
      GENRE, USER_ACTIVITY, MOVIE_POPULARITY]
  return [tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[key]) for key in keys]
