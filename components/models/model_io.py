"""Training input shared by both models: Transform's output read into memory, in a fixed order,
and the sizes of Transform's vocabularies."""

import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.data import features


@dataclasses.dataclass
class Examples:
  """Transformed examples held in memory, in a canonical order."""
  features: Dict[str, np.ndarray]
  labels: np.ndarray

  def __len__(self) -> int:
    return len(self.labels)


def load_examples(file_pattern: List[str], tf_transform_output: tft.TFTransformOutput,
                  feature_names: Optional[Sequence[str]] = None) -> Examples:
  """Reads every transformed example once and sorts them by (user, movie).

  Beam writes examples in no fixed order, so training on them as read would differ from run to
  run. Sorted by the (user, movie) pair (unique per rating), the order depends only on the
  data, and Keras' seeded per-epoch shuffle makes training repeatable for a given seed.

  Transform writes (gzipped) TFRecords of tf.Examples whose features are all fixed-length;
  they are parsed in batches of 65,536 with `tf.io.parse_example`, in parallel.
  TFX's data accessor (tfx_bsl's TFXIO, through Arrow record batches) took 336.2 s of the
  synthetic 10M's Trainer for its 8,000,000 training examples (docs/performance.md);
  this takes 35.1 s with a peak of 3.03 GB (`/usr/bin/time -v` on a script that calls it).

  `feature_names` (with the label always) keeps only the columns a model reads: of the 23
  int64 values of a transformed example, collaborative_filtering reads 2.
  """
  files = sorted({path for pattern in file_pattern for path in tf.io.gfile.glob(pattern)})
  if not files:
    raise ValueError(f'no files match {file_pattern}')
  spec = tf_transform_output.transformed_feature_spec()
  if feature_names is not None:
    unknown = set(feature_names) - set(spec)
    if unknown:
      raise ValueError(f'no transformed feature {sorted(unknown)}; Transform wrote {sorted(spec)}')
    spec = {name: spec[name] for name in {*feature_names, features.LABEL}}
  # Files read one after another: parallel reads (num_parallel_reads) pass every record through
  # an interleave, which took 106.9 s instead of 20.6 s for the synthetic 10M's one file.
  dataset = (tf.data.TFRecordDataset(
      files, compression_type='GZIP' if files[0].endswith('.gz') else '')
             .batch(65_536)
             .map(lambda batch: tf.io.parse_example(batch, spec),
                  num_parallel_calls=tf.data.AUTOTUNE))
  columns: Dict[str, List[np.ndarray]] = {}
  for batch in dataset.as_numpy_iterator():
    for name, values in batch.items():
      columns.setdefault(name, []).append(values)
  if not columns:
    raise ValueError(f'no examples in {file_pattern}')
  # One column at a time, each freeing its parts (then its unsorted copy) before the next: at
  # 10M the columns take 1.6 GB, and copying them all at once doubled that.
  merged = {name: None for name in columns}
  for name in merged:
    merged[name] = np.concatenate(columns.pop(name))
  labels = merged.pop(features.LABEL)
  return canonical_order(merged, labels)


def canonical_order(columns: Dict[str, np.ndarray], labels: np.ndarray) -> Examples:
  """The examples sorted by (user index, movie index). Takes `columns` over: each column is
  replaced by its sorted copy in turn, so only one is ever held twice."""
  order = np.lexsort((columns[features.MOVIE_INDEX], columns[features.USER_INDEX]))
  for name in columns:
    columns[name] = columns[name][order]
  return Examples(columns, labels[order].astype(np.float32))


def vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  """Size of an index space of Transform's vocabulary `name`, including the OOV bucket."""
  return tf_transform_output.vocabulary_size_by_name(name) + features.OOV_BUCKETS


def padded_vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  """Like `vocabulary_size`, plus the padding id 0 of padded token features."""
  return vocabulary_size(tf_transform_output, name) + 1
