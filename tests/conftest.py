"""Shared test set-up: Keras 2 before TensorFlow loads, the real ML-100K folder, tiny fixtures,
and one real pipeline run on a sample that the end-to-end and serving tests share.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import json
import os
import subprocess
import sys

import pytest

from bench.provenance import ML_100K_DIR, PROJECT_DIR  # (the benchmarks' data, too)
SAMPLE = 3000
MODELS = ('content_based', 'collaborative_filtering')


@pytest.fixture
def ml100k_dir():
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR} '
                '(set MOVIELENS_100K_DIR to point at one)')
  return ML_100K_DIR


def pipeline_command(data_dir, output_dir, *extra):
  """local_runner.py on a 3,000-rating sample, 2 epochs."""
  return [sys.executable, os.path.join(PROJECT_DIR, 'local_runner.py'), '--data-dir', data_dir,
          '--sample', str(SAMPLE), '--epochs', '2', '--max-rmse', '1.5',
          # 2 epochs on 2,400 ratings: like the RMSE bound, the popularity gate is for real
          # runs (tests/pipeline/test_pipeline_end_to_end.py checks it on its own).
          '--allow-below-most-popular', '--output-dir', output_dir, *extra]


def run_pipeline(data_dir, output_dir, *extra):
  """`pipeline_command` run to the end: (the process result, run_summary.json)."""
  result = subprocess.run(pipeline_command(data_dir, output_dir, *extra), cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=1200)
  with open(os.path.join(output_dir, 'run_summary.json'), encoding='utf-8') as f:
    return result, json.load(f)


@pytest.fixture(scope='session')
def finished_run(tmp_path_factory):
  """(data dir, output dir, process result, summary) of one real run, made once per session.

  MOVIELENS_TEST_RUN=<output dir of an earlier run of `run_pipeline`> reuses that run (its
  process result is then None): for iterating on tests that only read a finished run.
  """
  reuse = os.environ.get('MOVIELENS_TEST_RUN')
  if reuse:
    with open(os.path.join(reuse, 'run_summary.json'), encoding='utf-8') as f:
      return ML_100K_DIR, reuse, None, json.load(f)
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  output_dir = str(tmp_path_factory.mktemp('run'))
  result, summary = run_pipeline(ML_100K_DIR, output_dir)
  assert result.returncode == 0, result.stdout + result.stderr
  return ML_100K_DIR, output_dir, result, summary


def transformed_ml100k_sample(folder: str, size: int = SAMPLE):
  """(data, TFTransformOutput, transformed examples) of the first `size` real ML-100K ratings
  through bench.quality's in-process Transform (skips without the data)."""
  from bench import quality  # pylint: disable=import-outside-toplevel
  from components.data import movielens_formats  # pylint: disable=import-outside-toplevel
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  data = movielens_formats.read_movielens(ML_100K_DIR)
  train = data.ratings.take(slice(0, size))
  tft_output = quality.analyze(quality.raw_columns(data, train), folder)
  return data, tft_output, quality.transform(tft_output, quality.raw_columns(data, train))


def ml100k_rating(user_id='196', movie_id='242'):
  """A tf.Example of one rating with ML-100K's raw features (the served models' input)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  feature = lambda *v: tf.train.Feature(bytes_list=tf.train.BytesList(value=[x.encode() for x in v]))
  number = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
  return tf.train.Example(features=tf.train.Features(feature={
      'user_id': feature(user_id), 'movie_id': feature(movie_id), 'timestamp': number(881250949),
      'age': number(49), 'gender': feature('M'), 'occupation': feature('writer'),
      'zip_code': feature('55105'), 'title': feature('Kolya (1996)'),
      'release_year': number(1997), 'genres': feature('Comedy')}))


@pytest.fixture
def batch_source_calls(monkeypatch):
  """How many times the batch-reading Beam source (components/tfx/batch_read_tfxio.py) was
  made, per file pattern: proof that a component read through it."""
  from components.tfx import batch_read_tfxio  # pylint: disable=import-outside-toplevel
  calls = []
  stock = batch_read_tfxio.BatchReadTFExampleRecord.BeamSource

  def counted(self, batch_size=None):
    calls.append(tuple(self._file_pattern))  # pylint: disable=protected-access
    return stock(self, batch_size)
  monkeypatch.setattr(batch_read_tfxio.BatchReadTFExampleRecord, 'BeamSource', counted)
  return calls

