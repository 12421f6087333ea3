"""Training input shared by both models: Transform's output read into memory, in a fixed order,
and the sizes of Transform's vocabularies."""

import dataclasses
from typing import Dict, List

import numpy as np
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from components import features


@dataclasses.dataclass
class Examples:
  """Transformed examples held in memory, in a canonical order."""
  features: Dict[str, np.ndarray]
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.labels)


def load_examples(file_pattern: List[str], data_accessor,
                  tf_transform_output: tft.TFTransformOutput) -> Examples:
  """Reads every transformed example once and sorts them by (user, movie).

  Beam writes examples in no fixed order, so training on them as read would differ from run to
  run. Sorted by the (user, movie) pair (unique per rating), the order depends only on the
  data, and Keras' seeded per-epoch shuffle makes training repeatable for a given seed.
  """
  dataset = data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=65_536, label_key=features.LABEL, num_epochs=1,
                                     shuffle=False),
      tf_transform_output.transformed_metadata.schema)
  batches = list(dataset.as_numpy_iterator())
  if not batches:
    raise ValueError(f'no examples in {file_pattern}')
  columns = {name: np.concatenate([b[0][name] for b in batches]) for name in batches[0][0]}
  return canonical_order(columns, np.concatenate([b[1] for b in batches]))


def canonical_order(columns: Dict[str, np.ndarray], labels: np.ndarray) -> Examples:
  """The examples sorted by (user index, movie index)."""
  order = np.lexsort((columns[features.MOVIE_INDEX], columns[features.USER_INDEX]))
  return Examples({name: values[order] for name, values in columns.items()},
                  labels[order].astype(np.float32))


def vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  """Size of an index space of Transform's vocabulary `name`, including the OOV bucket."""
  return tf_transform_output.vocabulary_size_by_name(name) + features.OOV_BUCKETS


def padded_vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  """Like `vocabulary_size`, plus the padding id 0 of padded token features."""
  return vocabulary_size(tf_transform_output, name) + 1
