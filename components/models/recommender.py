"""What the trainer and the serving export ask of a model: the interface both models implement.

A `Recommender` is a Keras model that rates (user, movie) pairs from transformed features and
ranks the catalogue with its ranking head. The trainer and `components/export/signatures.py`
read these attributes instead of probing a model for optional methods.
"""

from typing import Dict, Tuple

import numpy as np
import tensorflow as tf


class Recommender(tf.keras.Model):
  """The base of `ContentBasedModel` and `CollaborativeFilteringModel`."""

  # Transformed features the model reads, per user and per movie.
  user_feature_names: Tuple[str, ...] = ()
  movie_feature_names: Tuple[str, ...] = ()
  # True: an unknown user gets the most rated movies (no features to score them from).
  popularity_for_unknown_users = False
  # True: `predict_rating` and `recommend` take ratings sent for any user, read through
  # `profile_inputs` (content_based); every model reads them for a new user
  # (`recommend_new_user`).
  takes_profile = False
  # Among `profile_inputs`: [B] bool, the rows whose user is described by the sent ratings.
  HAS_PROFILE = 'has_profile'
  # True: `recommend` ranks by predicted rating (no ranking head was trained).
  ranks_by_rating = False
  # The tables whose rows are a Transform vocabulary's tokens, by their attribute path:
  # (vocabulary name, the row of its first token). A warm start moves their rows to the
  # tokens' new places (components/models/warm_start.py); other weights are copied.
  vocabulary_tables: Dict[str, Tuple[str, int]] = {}

  def training_inputs(self, num_examples: int) -> Dict[str, np.ndarray]:
    """Inputs the training step needs besides the features (none by default)."""
    del num_examples
    return {}

  def profile_inputs(self, movie_inputs: Dict[str, tf.Tensor],
                     ratings: tf.RaggedTensor) -> Dict[str, tf.Tensor]:
    """The model inputs [B, ...] that describe users by the ratings a request sends:
    `movie_inputs` are the movie features of `ratings.flat_values`' movies, `ratings` [B, None]
    the ratings given, row by row. `HAS_PROFILE` says which rows; the model reads the others'
    stored training ratings."""
    raise NotImplementedError(f'{type(self).__name__} takes no rated movies')

  def build_weights(self, inputs: Dict[str, tf.Tensor]) -> None:
    """Creates every weight, the rating's and the ranking head's, by rating and ranking the
    examples `inputs` (a few): a warm start sets them before the first training step."""
    self(inputs)
    self.ranking_user(inputs)
    self.ranking_movies(inputs)

  def set_new_user_mean(self) -> None:
    """Sets what `profile_inputs` reads of the trained weights (nothing by default): after
    training, and after each epoch where a validation reads new users."""

  def after_training(self) -> None:
    """Called once `fit` has finished, before export (nothing by default)."""
