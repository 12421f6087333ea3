"""bench.timeline, the replayed schedule, killed halfway and restarted: it goes on from where it
stopped (the finished run is not run again), and every run is judged on a later span than it
trained on. Two monthly spans of a 3,000-rating ML-100K sample, one epoch, the second run
warm-started from the first's models."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ML_100K_DIR, PROJECT_DIR


def _command(tmp_path):
  return [sys.executable, '-m', 'bench.timeline', '--data-dir', ML_100K_DIR, '--span', 'month',
          '--sample', '3000', '--epochs', '1', '--min-history-spans', '6', '--no-cold-check',
          '--output-dir', str(tmp_path / 'schedule'), '--results', str(tmp_path / 'timeline.md'),
          '--runner-arg=--max-rmse=1.5', '--runner-arg=--allow-below-most-popular',
          '--warm-start']


@pytest.mark.slow
def test_a_killed_replay_goes_on_from_where_it_stopped(tmp_path):
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  progress = tmp_path / 'schedule' / 'timeline.json'
  first = subprocess.Popen(_command(tmp_path), cwd=PROJECT_DIR, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
  deadline = time.monotonic() + 900
  while not (progress.exists() and json.loads(progress.read_text())['runs']):
    assert first.poll() is None, first.stdout.read()
    assert time.monotonic() < deadline, 'the first run did not finish in 15 minutes'
    time.sleep(2)
  time.sleep(20)  # into the second run's pipeline
  os.killpg(first.pid, signal.SIGKILL)  # the replay and the local_runner.py it started
  first.wait()
  assert [r['eval_span'] for r in json.loads(progress.read_text())['runs']] == [199803]

  again = subprocess.run(_command(tmp_path), cwd=PROJECT_DIR, capture_output=True, text=True,
                         timeout=1200)
  assert again.returncode == 0, again.stdout + again.stderr
  assert 'span 199803: done earlier' in again.stdout
  report = json.loads((tmp_path / 'timeline.json').read_text())
  assert [r['eval_span'] for r in report['runs']] == [199803, 199804]
  for row in report['runs']:
    assert row['status'] == 'succeeded'
    assert row['eval_min_timestamp'] > row['train_max_timestamp']
  assert report['runs'][1]['train_spans'] == report['runs'][0]['train_spans'] + [199803]
  # The second run's Trainers started from the first run's models, which were served.
  assert {m['warm_start'] for m in report['runs'][0]['models'].values()} == {'scratch'}
  assert {m['warm_start'] for m in report['runs'][1]['models'].values()} == {'warm'}
  assert (tmp_path / 'timeline.png').stat().st_size > 0
  assert '| 199804 |' in (tmp_path / 'timeline.md').read_text()
  # The folder holds this replay: one with other options is refused, not mixed into it.
  other = subprocess.run(_command(tmp_path) + ['--window', '1'], cwd=PROJECT_DIR,
                         capture_output=True, text=True, timeout=600)
  assert other.returncode == 2
  assert 'holds a replay of another window' in other.stderr
