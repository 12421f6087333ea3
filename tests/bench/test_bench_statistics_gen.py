"""bench/statistics_gen.py: both StatisticsGen variants timed on the same prepared data."""

import subprocess
import sys

from tests.conftest import PROJECT_DIR


def test_times_each_variant_each_round(tmp_path):
  subprocess.run([sys.executable, '-m', 'bench.synth', '--ratings', '5000', '--output',
                  str(tmp_path / 'data')], cwd=PROJECT_DIR, check=True)
  result = subprocess.run([sys.executable, '-m', 'bench.statistics_gen', '--data-dir',
                           str(tmp_path / 'data'), '--rounds', '1', '--work-dir',
                           str(tmp_path / 'work')],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = [line for line in result.stdout.splitlines() if 'StatisticsGen:' in line]
  assert [line.split(' StatisticsGen')[0] for line in lines] == ['round 1, tfx', 'round 1, project']
