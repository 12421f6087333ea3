"""Drift in the prepared data between runs (a new column, ratings on another scale, a feature
gone) is caught by ExampleValidator against the curated schema, and the run stops before
Transform and training with the anomalies in its summary."""

import csv
import json
import os
import subprocess

from components.data import ingestion
from tests.conftest import PROJECT_DIR, SAMPLE, pipeline_command


def test_drifted_data_stops_the_run_before_training(ml100k_dir, tmp_path):
  output_dir = str(tmp_path / 'run')
  prepared = ingestion.prepare_examples(
      ingestion.IngestionOptions(data_dir=ml100k_dir, sample=SAMPLE), output_dir)
  # Another job rewrites the prepared training split (as a shared data root allows).
  path = os.path.join(prepared.input_base, ingestion.TRAIN, ingestion.EXAMPLES_FILE)
  with open(path, encoding='utf-8', newline='') as f:
    rows = list(csv.DictReader(f))
  for i, row in enumerate(rows):
    row['mood'] = 'happy'                                   # a new column
    row['rating'] = str(float(row['rating']) * 2) if i % 2 else row['rating']  # a 1..10 scale
    del row['genres']                                       # a feature gone
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)

  result = subprocess.run(pipeline_command(ml100k_dir, output_dir), cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=1200)
  assert result.returncode == 1, result.stdout + result.stderr
  with open(os.path.join(output_dir, 'run_summary.json'), encoding='utf-8') as f:
    summary = json.load(f)
  assert summary['status'] == 'failed'
  for feature in ('mood', 'rating', 'genres'):
    assert f"split train, feature '{feature}'" in summary['error'], summary['error']
  assert "feature 'mood'" in result.stdout  # the printed summary says it too
  ran = [c['id'] for c in summary['components']]
  assert 'ExampleValidator' in ran and 'Transform' not in ran
  assert not any(c.startswith('Trainer') for c in ran)
  assert not os.path.exists(os.path.join(output_dir, 'serving'))
