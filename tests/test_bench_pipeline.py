"""bench/pipeline.py's measuring parts: the process tree's peak memory, and the targets."""

import sys

from bench import pipeline


def test_peak_memory_counts_the_children_of_the_measured_process(tmp_path):
  # The measured process starts a child that holds 300 MB for a second: the peak includes it.
  child = 'import time; b = bytearray(300 * 2**20); b[::4096] = b"x" * len(b[::4096]); time.sleep(1)'
  command = [sys.executable, '-c',
             f'import subprocess, sys; subprocess.run([sys.executable, "-c", {child!r}])']
  code, seconds, peak = pipeline.run_once(command, str(tmp_path / 'log'))
  assert code == 0 and seconds >= 1.0
  assert 300 * 2 ** 20 <= peak < 2 * 2 ** 30


def test_targets_compare_the_rows_with_the_floors():
  def row(dataset, seconds, cached, ratings, rss, speed=None):
    return {'dataset': dataset, 'mode': 'default', 'ratings': ratings,
            'cold': {'seconds': seconds, 'peak_rss_bytes': rss}, 'cached': {'seconds': cached},
            'training': {'collaborative_filtering': {'examples_per_second': speed,
                                                     'steady_examples_per_second': 2 * speed}}
                        if speed else {},
            'seconds_per_million_ratings': seconds / ratings * 1e6}
  targets = pipeline._targets([row('ml-100k', 140.0, 25.0, 100_000, 1 << 30, 2e6),
                               row('synth-1m', 600.0, 30.0, 1_000_000, 2 << 30),
                               row('synth-10m', 13_000.0, 60.0, 10_000_000, 9 << 30)])
  assert targets['ML-100K cold run s'] == (150.0, 140.0, True)
  assert targets['ML-100K cached re-run s'] == (20.0, 25.0, False)
  assert targets['collaborative_filtering Trainer examples/s'] == (1e6, 2e6, True)
  assert targets['collaborative_filtering Trainer examples/s after the first epoch'] == (
      1e6, 4e6, True)
  assert targets['10M peak RSS GiB'] == (8.0, 9.0, False)
  assert targets['10M time per rating / 1M time per rating'][2] is False  # 2.17x
