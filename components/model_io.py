"""Input pipelines and the serving export shared by both models.

Both models read Transform's output the same way and export the same TF Serving contract:
`serving_default` takes serialized tf.Example (raw features; the label is not needed), runs the
Transform graph inside the SavedModel and returns the predicted `rating`, clipped to the
dataset's rating scale.
"""

from typing import Dict, List, Tuple

import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from components import features

RATING_OUTPUT = 'rating'


def input_dataset(file_pattern: List[str], data_accessor, tf_transform_output: tft.TFTransformOutput,
                  batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
  """One pass over transformed examples as (features, rating) batches."""
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=features.LABEL,
                                     num_epochs=1, shuffle=shuffle, shuffle_seed=seed,
                                     shuffle_buffer_size=100_000),
      tf_transform_output.transformed_metadata.schema).prefetch(tf.data.AUTOTUNE)


def mean_label(dataset: tf.data.Dataset) -> float:
  """The mean rating of a (features, rating) dataset: the models' starting global bias."""
  total, count = dataset.reduce(
      (tf.constant(0.0, tf.float64), tf.constant(0, tf.int64)),
      lambda acc, batch: (acc[0] + tf.reduce_sum(tf.cast(batch[1], tf.float64)),
                          acc[1] + tf.size(batch[1], out_type=tf.int64)))
  if int(count) == 0:
    raise ValueError('the training split is empty')
  return float(total / tf.cast(count, tf.float64))


def vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  """Size of an index space of Transform's vocabulary `name`, including the OOV bucket."""
  return tf_transform_output.vocabulary_size_by_name(name) + features.OOV_BUCKETS


def padded_vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  """Like `vocabulary_size`, plus the padding id 0 of padded token features."""
  return vocabulary_size(tf_transform_output, name) + 1


def export_serving_model(model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput,
                         export_dir: str, rating_range: Tuple[float, float]) -> None:
  """Saves `model` as a SavedModel with the `serving_default` signature."""
  model.tft_layer = tf_transform_output.transform_features_layer()
  raw_spec = tf_transform_output.raw_feature_spec()
  raw_spec.pop(features.LABEL, None)
  low, high = rating_range

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve_tf_examples(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    raw = tf.io.parse_example(serialized, raw_spec)
    transformed = model.tft_layer(raw)
    rating = tf.clip_by_value(model(transformed, training=False), low, high)
    return {RATING_OUTPUT: rating}

  model.save(export_dir, save_format='tf', signatures={'serving_default': serve_tf_examples})
