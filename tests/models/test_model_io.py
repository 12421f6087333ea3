"""The Trainer's reading of Transform's output (components/models/model_io.py): per-example
columns, and content_based's movie content read as one row per movie."""

import numpy as np
import pytest
import tensorflow as tf

from components.data import features as f
from components.models import model_io
from components.models import trainer
from pipeline import configs
from tests.conftest import transformed_ml100k_sample

CB = configs.default_hparams()['content_based']


def _write(path, examples, spec, rows, change=lambda name, k, values: values):
  """`rows` of in-memory transformed examples as a TFRecord file of tf.Examples; `change`
  (feature name, k-th row written, values) -> the values written."""
  with tf.io.TFRecordWriter(path) as writer:
    for k, row in enumerate(rows):
      example = tf.train.Example()
      for name in spec:
        values = examples.labels[row] if name == f.LABEL else examples.features[name][row]
        target = example.features.feature[name]
        (target.float_list if name == f.LABEL else target.int64_list).value.extend(
            np.ravel(change(name, k, values)).tolist())
      writer.write(example.SerializeToString())


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
  """(TFTransformOutput, in-memory examples, their TFRecord files in a shuffled order) of 3,000
  real ML-100K ratings."""
  folder = tmp_path_factory.mktemp('model_io')
  _, tft_output, examples = transformed_ml100k_sample(str(folder / 'transform'))
  spec = tft_output.transformed_feature_spec()
  order = np.random.default_rng(0).permutation(len(examples))
  files = [str(folder / f'part-{k}.tfrecord') for k in range(2)]
  for k, path in enumerate(files):
    _write(path, examples, spec, order[k::2])
  return tft_output, examples, files


def test_content_based_reads_its_movies_content_as_a_table(sample):
  tft_output, examples, files = sample
  per_example, per_movie = trainer.columns_read(CB, list(tft_output.transformed_feature_spec()))
  assert set(per_movie) == {f.GENRE_IDS, f.TITLE_TOKEN_IDS, f.RELEASE_BUCKET}
  assert not set(per_example) & set(per_movie) and f.MOVIE_INDEX in per_example
  read = model_io.load_examples(files, tft_output, per_example, per_movie)
  assert set(read.features) == set(per_example)
  for name in per_example:
    np.testing.assert_array_equal(read.features[name], examples.features[name])
  np.testing.assert_array_equal(read.labels, examples.labels)
  num_movies = model_io.vocabulary_size(tft_output, f.MOVIE_VOCAB)
  expected = model_io.movie_content(examples, per_movie, num_movies)
  for name in per_movie:
    np.testing.assert_array_equal(read.movie_content[name], expected[name])
    # ... and each example's content is its movie's row.
    np.testing.assert_array_equal(read.movie_content[name][read.features[f.MOVIE_INDEX]],
                                  examples.features[name])


def test_a_movie_whose_examples_disagree_on_its_content_is_an_error(sample, tmp_path,
                                                                     monkeypatch):
  tft_output, examples, _ = sample
  spec = tft_output.transformed_feature_spec()
  movie = examples.features[f.MOVIE_INDEX][0]
  rows = np.nonzero(examples.features[f.MOVIE_INDEX] == movie)[0][:2]
  path = str(tmp_path / 'part.tfrecord')
  # The second example of the movie says another decade.
  _write(path, examples, spec, rows,
         lambda name, k, values: values + 1 if name == f.RELEASE_BUCKET and k else values)
  # In one batch, and across batches (each example its own batch).
  for batch in (model_io.READ_BATCH, 1):
    monkeypatch.setattr(model_io, 'READ_BATCH', batch)
    with pytest.raises(ValueError, match=f"'release_bucket' differs between examples of movie "
                                         f'index {movie}'):
      model_io.load_examples([path], tft_output, [f.USER_INDEX, f.MOVIE_INDEX],
                             [f.RELEASE_BUCKET])


def test_content_based_trains_the_same_with_content_as_a_table(sample):
  """One epoch of the Trainer's fit on the columns and on the table: the same model."""
  tft_output, examples, files = sample
  per_example, per_movie = trainer.columns_read(CB, list(tft_output.transformed_feature_spec()))
  read = model_io.load_examples(files, tft_output, per_example, per_movie)
  hparams = CB.replace(epochs=1)
  from_table = trainer.fit_model(tft_output, hparams, read)
  from_columns = trainer.fit_model(tft_output, hparams, examples)
  for a, b in zip(from_table.weights, from_columns.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
  np.testing.assert_array_equal(from_table(examples.features).numpy(),
                                from_columns(examples.features).numpy())


def test_reading_has_autotuning_off_and_keeps_file_order(sample):
  tft_output, _, files = sample
  spec = tft_output.transformed_feature_spec()
  dataset = model_io.parsed_batches(files, spec)
  assert dataset.options().autotune.enabled is False
  read = np.concatenate([batch[f.USER_INDEX] for batch in dataset.as_numpy_iterator()])
  expected = np.concatenate([
      batch[f.USER_INDEX] for path in files
      for batch in tf.data.TFRecordDataset(path).batch(model_io.READ_BATCH).map(
          lambda records: tf.io.parse_example(records, spec)).as_numpy_iterator()])
  np.testing.assert_array_equal(read, expected)
