"""A local run killed (SIGKILL) in the middle of Transform or of a Trainer, then rerun with the
same command: the components that had finished come from ML Metadata's cache, the run
finishes, and the pushed models answer exactly like those of an uninterrupted run."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from serving import client
from tests.conftest import MODELS, PROJECT_DIR, pipeline_command, run_pipeline

PAIRS = {'user_id': ['1', '13', '405', 'no-such-user'], 'movie_id': ['50', '1', '300', '7']}


def _kill_during(command, component, seconds):
  """Starts the run, SIGKILLs it `seconds` after `component` started; returns its progress."""
  process = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
  progress, deadline = b'', time.monotonic() + 900
  marker = f'] {component} ... '.encode()
  try:
    while marker not in progress and time.monotonic() < deadline:
      chunk = os.read(process.stderr.fileno(), 4096)
      if not chunk:
        break
      progress += chunk
    assert marker in progress, progress.decode(errors='replace')
    time.sleep(seconds)
  finally:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
  return progress.decode(errors='replace'), process.returncode


def _ratings(summary, name):
  """predict_rating of the pushed model on PAIRS (other inputs: "not given")."""
  model = next(m for m in summary['models'] if m['name'] == name)
  predict = tf.saved_model.load(model['pushed_version_path']).signatures['predict_rating']
  return client.call_loaded(predict, PAIRS)['rating']


@pytest.mark.slow
@pytest.mark.parametrize('component, seconds', [('Transform', 4.0),
                                                ('Trainer_content_based', 3.0)])
def test_a_killed_run_resumes_from_the_cache(finished_run, tmp_path, component, seconds):
  data_dir, _, _, uninterrupted = finished_run
  output_dir = str(tmp_path / 'run')
  progress, code = _kill_during(pipeline_command(data_dir, output_dir), component, seconds)
  assert code == -signal.SIGKILL
  assert f'{component} ... done' not in progress, 'killed too late: it had finished'
  finished_before = [line.split('] ')[1].split(' ...')[0] for line in progress.splitlines()
                     if ' ... done in ' in line]
  assert finished_before  # e.g. CsvExampleGen, StatisticsGen

  result, summary = run_pipeline(data_dir, output_dir)
  assert result.returncode == 0, result.stdout + result.stderr
  states = {c['id']: c['state'] for c in summary['components']}
  assert {states[node] for node in finished_before} == {'CACHED'}, states
  assert states[component] == 'COMPLETE'
  for name in MODELS:
    np.testing.assert_allclose(_ratings(summary, name), _ratings(uninterrupted, name),
                               rtol=0, atol=1e-5)
