"""A schedule that meets a corrupted span, through the real pipeline: the span is refused when
it is appended, the next run serves on as before (fully cached, the served version unchanged),
and once the good span arrives its run trains on the earlier spans only and is judged on it.
Real ML-100K months (every fifth rating), one epoch."""

import json
import os
import subprocess
import sys

import pytest

from components.data import ingestion
from components.data import spans
from tests.conftest import PROJECT_DIR
from tests.data.test_span_append import make_schedule_source, prepare_root


def _run(root, output_dir):
  result = subprocess.run(
      [sys.executable, 'local_runner.py', '--data-root', root, '--epochs', '1',
       '--max-rmse', '1.5', '--allow-below-most-popular', '--output-dir', output_dir],
      cwd=PROJECT_DIR, capture_output=True, text=True, timeout=1200)
  with open(os.path.join(output_dir, 'run_summary.json'), encoding='utf-8') as f:
    return result, json.load(f)


def _append(root, source, path):
  return subprocess.run([sys.executable, '-m', 'pipeline.prepare_data', '--data-root', root,
                         '--data-dir', source, '--append-span', path], cwd=PROJECT_DIR,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_corrupted_span_is_refused_and_the_schedule_goes_on(tmp_path):
  source, march, corrupt = make_schedule_source(str(tmp_path))
  root, output_dir = prepare_root(str(tmp_path), source), str(tmp_path / 'out')
  result, first = _run(root, output_dir)
  assert result.returncode == 0, result.stdout + result.stderr
  assert first['data']['eval_span'] == 199802
  served = {m['name']: m['serving_version_path'] for m in first['models']}
  assert all(served.values())

  refused = _append(root, source, corrupt)
  assert refused.returncode == 2 and f'{corrupt}:11' in refused.stderr
  result, again = _run(root, output_dir)  # the scheduled run after the refused span
  assert result.returncode == 0, result.stdout + result.stderr
  assert again['data']['eval_span'] == 199802
  assert {m['name']: m['serving_version_path'] for m in again['models']} == served
  states = {c['id']: c['state'] for c in again['components']}
  assert states['CsvExampleGen'] == states['Trainer_collaborative_filtering'] == 'CACHED'

  assert _append(root, source, march).returncode == 0
  result, later = _run(root, output_dir)
  assert result.returncode == 0, result.stdout + result.stderr
  data = later['data']
  assert data['eval_span'] == 199803 and data['train_spans'][-1] == 199802
  assert data['eval_min_timestamp'] > data['train_max_timestamp']
  window = spans.split_file(root, 199803, ingestion.TRAIN, ingestion.EXAMPLES_FILE)
  with open(window, encoding='utf-8') as f:
    assert len(f.read().splitlines()) - 1 == data['num_ratings']['train']
  with open(march, encoding='latin-1') as f:
    assert data['num_ratings']['eval'] == len(f.read().splitlines())  # the good file, whole
  for model in later['models']:  # judged against the model served through the refusal
    earlier = next(m for m in first['models'] if m['name'] == model['name'])
    assert model['baseline_model'] == earlier['model_uri']
