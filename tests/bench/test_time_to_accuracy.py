"""bench/time_to_accuracy.py: the time-to-accuracy rule, and a small run written with its
provenance."""

import json

import pytest

from bench import time_to_accuracy as tta


def test_time_to_within_is_the_first_epoch_near_the_final_value():
  seconds = [5.0, 7.0, 9.0, 11.0]
  assert tta.time_to_within(seconds, [1.10, 0.95, 0.903, 0.900]) == (9.0, 3)
  assert tta.time_to_within(seconds, [0.20, 0.331, 0.333, 0.334]) == (7.0, 2)  # rising metrics
  assert tta.time_to_within(seconds, [1.0, 0.9, 0.8, 0.7]) == (11.0, 4)  # still improving
  # Within counts from either side: a value that overshot and came back is near the end too.
  assert tta.time_to_within([1.0, 2.0, 3.0], [0.899, 0.95, 0.901]) == (1.0, 1)


def test_checkpoints_split_epochs_of_short_fits():
  assert tta.checkpoints(9, 100) == [100]  # more epochs than points: at each epoch's end
  assert tta.checkpoints(8, 100) == [100]
  assert tta.checkpoints(2, 100) == [25, 50, 75, 100]
  assert tta.checkpoints(1, 10) == [1, 2, 4, 5, 6, 8, 9, 10]
  assert tta.checkpoints(1, 3) == [1, 2, 3]  # no more points than batches


def test_a_small_run_records_every_epoch_and_the_time_to_accuracy(tmp_path):
  results = tmp_path / 'tta.md'
  assert tta.main(['--sizes', '20000', '--no-peer', '--models', 'collaborative_filtering',
                   '--work-dir', str(tmp_path / 'work'), '--results', str(results)]) == 0
  report = json.loads((tmp_path / 'tta.json').read_text())
  [result] = report['results']
  assert result['data'] == 'synthetic 20,000'
  assert result['fit_ratings'] + result['validation_ratings'] == 16_000  # the 80% training part
  row = result['models']['collaborative_filtering']
  assert (len(row['seconds']) == len(row['rmse']) == len(row['ndcg@10'])
          == len(row['epochs_done']) == row['points'] >= tta.POINTS)
  assert row['epochs_done'][-1] == row['epochs'] > 1
  assert row['seconds'] == sorted(row['seconds'])
  assert row['epochs_done'] == sorted(set(row['epochs_done']))
  assert row['rmse_final'] == row['rmse'][-1] and abs(
      row['rmse'][row['rmse_point'] - 1] - row['rmse_final']) <= tta.WITHIN
  assert row['rmse_seconds'] == pytest.approx(row['seconds'][row['rmse_point'] - 1])
  assert row['rmse_epochs'] == row['epochs_done'][row['rmse_point'] - 1]
  assert 0.0 <= row['ndcg@10_final'] <= 1.0
  assert '| synthetic 20,000 (' in results.read_text()
