"""Training input shared by both models: Transform's output read into memory, in a fixed order,
per-movie features as one table row per movie, and the sizes of Transform's vocabularies."""

import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.data import features
from components.models import batches


READ_BATCH = 65_536  # examples parsed at a time


@dataclasses.dataclass
class Examples:
  """Transformed examples held in memory, in a canonical order. `movie_content` holds features
  that depend on the movie alone as a table by movie index, in place of a column per example
  (`load_examples`' `per_movie`); it is empty where every feature is a column."""
  features: Dict[str, np.ndarray]
  labels: np.ndarray
  movie_content: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  def __len__(self) -> int:
    return len(self.labels)


def load_examples(file_pattern: List[str], tf_transform_output: tft.TFTransformOutput,
                  feature_names: Optional[Sequence[str]] = None,
                  per_movie: Sequence[str] = ()) -> Examples:
  """Reads every transformed example once and sorts them by (user, movie).

  Beam writes examples in no fixed order, so training on them as read would differ from run to
  run. Sorted by the (user, movie) pair (unique per rating), the order depends only on the
  data, and Keras' seeded per-epoch shuffle makes training repeatable for a given seed.

  Transform writes (gzipped) TFRecords of tf.Examples whose features are all fixed-length;
  they are parsed in batches of READ_BATCH with `tf.io.parse_example`, in parallel.
  TFX's data accessor (tfx_bsl's TFXIO, through Arrow record batches) took 336.2 s of the
  synthetic 10M's Trainer for its 8,000,000 training examples (docs/performance.md);
  this takes 35.1 s with a peak of 3.03 GB (`/usr/bin/time -v` on a script that calls it).

  `feature_names` (with the label always) keeps only the columns a model reads: of the 23
  int64 values of a transformed example, collaborative_filtering reads 2.

  `per_movie` features (read besides `feature_names`) are kept as one row per movie index
  (`Examples.movie_content`, built batch by batch, `MovieTable`): content_based's 21 content
  values per example would take 3.4 GB at 20M training ratings, its table a few MB. A movie
  whose rows disagree on one of them is an error, never a silent choice.
  """
  files = sorted({path for pattern in file_pattern for path in tf.io.gfile.glob(pattern)})
  if not files:
    raise ValueError(f'no files match {file_pattern}')
  spec = tf_transform_output.transformed_feature_spec()
  if feature_names is not None:
    unknown = set(feature_names) - set(spec)
    if unknown:
      raise ValueError(f'no transformed feature {sorted(unknown)}; Transform wrote {sorted(spec)}')
    spec = {name: spec[name] for name in {*feature_names, *per_movie, features.LABEL,
                                          features.USER_INDEX, features.MOVIE_INDEX}}
  table = MovieTable(per_movie, vocabulary_size(tf_transform_output, features.MOVIE_VOCAB))
  columns: Dict[str, List[np.ndarray]] = {}
  for batch in parsed_batches(files, spec).as_numpy_iterator():
    table.add(batch)
    for name, values in batch.items():
      if name in table.names:
        continue
      columns.setdefault(name, []).append(values)
  if not columns:
    raise ValueError(f'no examples in {file_pattern}')
  # One column at a time, each freeing its parts (then its unsorted copy) before the next: at
  # 10M the columns take 1.6 GB, and copying them all at once doubled that.
  merged = {name: None for name in columns}
  for name in merged:
    merged[name] = np.concatenate(columns.pop(name))
  labels = merged.pop(features.LABEL)
  examples = canonical_order(merged, labels)
  examples.movie_content = table.values
  return examples


class MovieTable:
  """Per-movie features gathered from examples into one row per movie index; rows of movies no
  example has stay 0, like the padding of Transform's token features."""

  def __init__(self, names: Sequence[str], num_movies: int):
    self.names = tuple(names)
    self.values: Dict[str, np.ndarray] = {}
    self._num_movies = num_movies
    self._seen = np.zeros(num_movies, bool)

  def add(self, batch: Dict[str, np.ndarray]) -> None:
    """Takes the per-movie features of a batch of examples (with their movie index)."""
    if not self.names:
      return
    index = batch[features.MOVIE_INDEX]
    movies, first, inverse = np.unique(index, return_index=True, return_inverse=True)
    if movies.size and (movies[0] < 0 or movies[-1] >= self._num_movies):
      raise ValueError(f'movie index {movies[0] if movies[0] < 0 else movies[-1]} is outside '
                       f"Transform's {self._num_movies} movie indices")
    new = ~self._seen[movies]
    for name in self.names:
      values = batch[name]
      if name not in self.values:
        self.values[name] = np.zeros((self._num_movies,) + values.shape[1:], values.dtype)
      # A movie's value: the table's, or for a movie new to it its first example's here.
      expected = self.values[name][movies]
      expected[new] = values[first[new]]
      per_example = expected[inverse.reshape(-1)]
      wrong = np.nonzero(np.any((values != per_example).reshape(len(values), -1), axis=1))[0]
      if wrong.size:
        raise ValueError(f'transformed feature {name!r} differs between examples of movie index '
                         f'{index[wrong[0]]}: {per_example[wrong[0]]} and {values[wrong[0]]}; '
                         'it must depend on the movie alone')
      self.values[name][movies] = expected
    self._seen[movies] = True


def movie_content(examples: Examples, names: Sequence[str], num_movies: int
                  ) -> Dict[str, np.ndarray]:
  """The `names` features of each movie index [num_movies, ...]: the examples' table where
  they were read as one (`load_examples`' `per_movie`), else built from their columns the same
  way (`MovieTable`); rows of movies without examples are 0."""
  if all(name in examples.movie_content for name in names):
    return {name: examples.movie_content[name] for name in names}
  table = MovieTable(names, num_movies)
  table.add({name: examples.features[name] for name in (*names, features.MOVIE_INDEX)})
  return table.values


def canonical_order(columns: Dict[str, np.ndarray], labels: np.ndarray) -> Examples:
  """The examples sorted by (user index, movie index). Takes `columns` over: each column is
  replaced by its sorted copy in turn, so only one is ever held twice."""
  order = np.lexsort((columns[features.MOVIE_INDEX], columns[features.USER_INDEX]))
  for name in columns:
    columns[name] = columns[name][order]
  return Examples(columns, labels[order].astype(np.float32))


def parsed_batches(files: Sequence[str], spec: Dict[str, tf.io.FixedLenFeature]
                   ) -> tf.data.Dataset:
  """The examples of the TFRecord `files`, parsed by `spec` in batches of READ_BATCH (the last
  one short), in file order.

  Files are read one after another: parallel reads (num_parallel_reads) pass every record
  through an interleave, which took 106.9 s instead of 20.6 s for the synthetic 10M's one file.
  Autotuning is off (batches.without_autotuning): reading ten copies of the synthetic 1M's
  training file (9,975,640 examples; bench/read_examples.py, three times), 12 reads with it on
  took 10.2-11.3 s, and deleting the iterator waited 9.3-10.2 s for the autotuning thread
  after three of them; 12 reads with it off took 7.7-8.6 s, and none waited."""
  return batches.without_autotuning(
      tf.data.TFRecordDataset(list(files),
                              compression_type='GZIP' if files[0].endswith('.gz') else '')
      .batch(READ_BATCH)
      .map(lambda batch: tf.io.parse_example(batch, spec), num_parallel_calls=tf.data.AUTOTUNE))


def vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  """Size of an index space of Transform's vocabulary `name`, including the OOV bucket."""
  return tf_transform_output.vocabulary_size_by_name(name) + features.OOV_BUCKETS


def padded_vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  """Like `vocabulary_size`, plus the padding id 0 of padded token features."""
  return vocabulary_size(tf_transform_output, name) + 1
