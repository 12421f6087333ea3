"""bench/pipeline.py's measuring parts: the process tree's peak memory, and the targets."""

import json
import sys

import pytest

from bench import pipeline


def test_peak_memory_counts_the_children_of_the_measured_process(tmp_path):
  # The measured process starts a child that holds 300 MB for a second: the peak includes it.
  child = 'import time; b = bytearray(300 * 2**20); b[::4096] = b"x" * len(b[::4096]); time.sleep(1)'
  command = [sys.executable, '-c',
             f'import subprocess, sys; subprocess.run([sys.executable, "-c", {child!r}])']
  code, seconds, peak, samples = pipeline.run_once(command, str(tmp_path / 'log'))
  assert code == 0 and seconds >= 1.0
  assert 300 * 2 ** 20 <= peak < 2 * 2 ** 30
  assert peak == max(rss for _, rss in samples) and len(samples) >= 4


def test_each_component_gets_the_peak_sampled_while_it_ran():
  components = [{'id': 'A', 'start_time': 100.0, 'seconds': 10.0},
                {'id': 'B', 'start_time': 105.0, 'seconds': 10.0},  # beside A for 5 s
                {'id': 'C', 'start_time': 200.0, 'seconds': 1.0},   # no sample in its time
                {'id': 'D', 'start_time': None, 'seconds': None}]   # not recorded
  samples = [(99.0, 50), (101.0, 10), (106.0, 30), (112.0, 20), (120.0, 40)]
  assert pipeline.component_peaks(components, samples) == {'A': 30, 'B': 30, 'C': 0}
  # The report's table: only where some run recorded them.
  recorded = row('synth-1m', 600.0, 30.0, 1_000_000, 2 << 30)
  report = {'command': 'c', 'date': 'd', 'machine': 'm', 'commit': 'x', 'targets': {},
            'rows': [recorded]}
  assert 'Peak resident memory' not in pipeline._markdown(report)
  recorded['cold']['component_peak_rss_bytes'] = {'Trainer': 1 << 30}
  assert '| Trainer | 1.00 |' in pipeline._markdown(report)


def row(dataset, seconds, cached, ratings, rss, speed=None):
  return {'dataset': dataset, 'mode': 'default', 'ratings': ratings, 'evaluated_ratings': ratings,
          'cold': {'seconds': seconds, 'peak_rss_bytes': rss, 'components': {'Trainer': 1.0}},
          'cached': {'seconds': cached}, 'rmse': {},
          'training': {'collaborative_filtering': {'examples_per_second': speed,
                                                   'steady_examples_per_second': 2 * speed}}
                      if speed else {},
          'seconds_per_million_ratings': seconds / ratings * 1e6}


def test_each_run_is_written_as_it_ends_so_a_stopped_benchmark_keeps_its_rows(tmp_path,
                                                                             monkeypatch):
  def measure(name, data_dir, mode, work_dir, extra):
    if name == 'synth-1m':
      raise KeyboardInterrupt  # stopped during the second run
    return row(name, 140.0, 15.0, 100_000, 1 << 30)
  monkeypatch.setattr(pipeline, 'measure', measure)
  monkeypatch.setattr(pipeline, 'ML_100K_DIR', str(tmp_path))
  # Once the first report is written the working tree differs from HEAD; the code measured
  # did not change.
  commits = iter(['abc1234', 'abc1234+changes'])
  monkeypatch.setattr(pipeline.provenance, 'commit', lambda: next(commits))
  output = tmp_path / 'pipeline.md'
  with pytest.raises(KeyboardInterrupt):
    pipeline.main(['--datasets', 'ml-100k,synth-1m', '--work-dir', str(tmp_path / 'work'),
                   '--output', str(output)])
  report = json.loads(output.with_suffix('.json').read_text())
  assert [r['dataset'] for r in report['rows']] == ['ml-100k']
  assert report['commit'] == 'abc1234'
  assert 'Partial: 1 of 2 runs done' in output.read_text()


def test_an_unknown_dataset_fails_before_any_run(tmp_path, monkeypatch):
  monkeypatch.setattr(pipeline, 'measure', lambda *args: pytest.fail('ran'))
  with pytest.raises(SystemExit):
    pipeline.main(['--datasets', 'ml-100k,ml-25m', '--work-dir', str(tmp_path)])


def test_a_missing_ml_100k_folder_fails_before_any_run_and_names_it(tmp_path, monkeypatch,
                                                                    capsys):
  monkeypatch.setattr(pipeline, 'measure', lambda *args: pytest.fail('ran'))
  monkeypatch.setattr(pipeline, 'ML_100K_DIR', str(tmp_path / 'nowhere'))
  with pytest.raises(SystemExit):
    pipeline.main(['--datasets', 'ml-100k', '--work-dir', str(tmp_path)])
  assert f'no folder {tmp_path / "nowhere"} (set MOVIELENS_100K_DIR' in capsys.readouterr().err


def test_a_run_that_fails_is_reported_with_its_exit_code_and_log(tmp_path):
  # The real local_runner.py, on a data folder that does not exist: it exits before a summary.
  with pytest.raises(SystemExit) as stopped:
    pipeline.measure('ml-100k', str(tmp_path / 'data'), 'default', str(tmp_path), [])
  assert str(stopped.value) == (
      'ml-100k default cold: local_runner.py exited with 2 and wrote no run_summary.json; its '
      f'output is in {tmp_path / "ml-100k-default-cold.log"}')


def test_targets_compare_the_rows_with_the_floors():
  targets = pipeline._targets([row('ml-100k', 110.0, 25.0, 100_000, 1 << 30, 2e6),
                               row('synth-1m', 600.0, 30.0, 1_000_000, 2 << 30),
                               row('synth-10m', 13_000.0, 60.0, 10_000_000, 9 << 30)])
  assert targets['ML-100K cold run s'] == (120.0, 110.0, True)
  assert targets['ML-100K cached re-run s'] == (20.0, 25.0, False)
  assert not any('examples/s' in name for name in targets)  # reported, not a floor
  assert targets['10M peak RSS GiB'] == (8.0, 9.0, False)
  assert targets['10M time per rating / 1M time per rating'][2] is False  # 2.17x
  assert not any(name.startswith('25M') for name in targets)
  largest = pipeline._targets([row('synth-25m', 4_800.0, 60.0, 25_000_000, 7 << 30)])
  assert largest == {'25M peak RSS GiB': (8.0, 7.0, True), '25M cold run min': (75.0, 80.0, False)}
