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
  # True: a request can send a user's ratings, read through `profile` (content_based).
  takes_profile = False
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

  def build_weights(self, inputs: Dict[str, tf.Tensor]) -> None:
    """Creates every weight, the rating's and the ranking head's, by rating and ranking the
    examples `inputs` (a few): a warm start sets them before the first training step."""
    self(inputs)
    self.ranking_user(inputs)
    self.ranking_movies(inputs)

  def after_training(self) -> None:
    """Called once `fit` has finished, before export (nothing by default)."""
