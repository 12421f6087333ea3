"""The runner's command line: bad input is one clear line and exit code 2, no traceback."""

import os
import subprocess
import sys

from tests import movielens_fixtures as fx
from tests.conftest import ML_100K_DIR, PROJECT_DIR


def _runner(*args, env=None):
  return subprocess.run([sys.executable, os.path.join(PROJECT_DIR, 'local_runner.py'), *args],
                        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300, env=env)


def test_bad_rating_stops_with_file_line_and_reason(tmp_path):
  folder = fx.ml100k(tmp_path / 'src', ratings=fx.ML_100K_RATINGS + ['1\t1\tfive\t1'])
  result = _runner('--data-dir', folder, '--output-dir', str(tmp_path / 'out'))
  assert result.returncode == 2
  assert f"error: {folder}/u.data:11: rating 'five' is not a number" in result.stderr
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(tmp_path / 'out' / 'run_summary.json')


def test_offline_without_data_says_how_to_point_at_a_folder(tmp_path):
  env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / 'empty-cache'),
             https_proxy='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9')
  result = _runner('--output-dir', str(tmp_path / 'out'), env=env)
  assert result.returncode == 2
  assert 'could not download https://files.grouplens.org/datasets/movielens/ml-100k.zip' \
      in result.stderr
  assert '--data-dir' in result.stderr and 'Traceback' not in result.stderr


def test_canonical_split_needs_ml100k(tmp_path):
  result = _runner('--data-dir', fx.ml_latest(tmp_path / 'src'), '--split', 'canonical:u1',
                   '--output-dir', str(tmp_path / 'out'))
  assert result.returncode == 2
  assert "split 'canonical:u1' uses the published ML-100K fold files" in result.stderr


def test_bad_hyperparameter_override_is_one_clear_line(tmp_path):
  for setting, message in (
      ('content_based.no_such=1', "content_based has no hyperparameter 'no_such'; its "
                                  "hyperparameters: batch_size, embedding_dim, epochs"),
      ('content_based.epochs=many', "content_based.epochs takes an int, got 'many'"),
      ('content_based.epochs=0', 'content_based.epochs must be at least 1, got 0'),
      ('collaborative_filtering.learning_rate_decay=linear',
       "collaborative_filtering.learning_rate_decay must be one of ['constant', 'cosine']")):
    result = _runner('--set', setting, '--output-dir', str(tmp_path / 'out'))
    assert result.returncode == 2
    assert message in result.stderr and 'Traceback' not in result.stderr


def test_parallel_must_be_a_whole_number_of_at_least_one(tmp_path):
  for value in ('0', 'two', '-1'):
    result = _runner('--parallel', value, '--output-dir', str(tmp_path / 'out'))
    assert result.returncode == 2
    assert f"--parallel: expected a whole number of at least 1, not '{value}'" in result.stderr
    assert 'Traceback' not in result.stderr


def test_span_flags_are_checked_before_anything_runs(tmp_path):
  for args, message in ((['--eval-span', '199801'], '--eval-span and --window need --span'),
                        (['--span', 'month', '--split', 'temporal'], '--span replaces --split'),
                        (['--data-dir', ML_100K_DIR, '--span', 'month', '--eval-span', '199709'],
                         'span 199709 is the first span: there is nothing before it to train on'),
                        (['--data-dir', ML_100K_DIR, '--span', 'month', '--eval-span', '199901'],
                         'span 199901 has no ratings; the spans are 199709..199804 (8)')):
    result = _runner(*args, '--output-dir', str(tmp_path / 'out'))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and 'Traceback' not in result.stderr
