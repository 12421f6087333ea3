"""bench/tfx_steps.py: TFX's and the project's StatisticsGen and Transform timed on the same
prepared data."""

import subprocess
import sys

from tests.conftest import PROJECT_DIR


def test_times_each_variant_of_each_step_each_round(tmp_path):
  subprocess.run([sys.executable, '-m', 'bench.synth', '--ratings', '5000', '--output',
                  str(tmp_path / 'data')], cwd=PROJECT_DIR, check=True)
  result = subprocess.run([sys.executable, '-m', 'bench.tfx_steps', '--data-dir',
                           str(tmp_path / 'data'), '--rounds', '1', '--work-dir',
                           str(tmp_path / 'work')],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = [line.split(': ')[0] for line in result.stdout.splitlines() if 'cached)' in line]
  assert lines == ['round 1, tfx StatisticsGen', 'round 1, project StatisticsGen',
                   'round 1, tfx Transform', 'round 1, project Transform']


def test_an_unknown_step_is_refused():
  result = subprocess.run([sys.executable, '-m', 'bench.tfx_steps', '--data-dir', 'x',
                           '--steps', 'trainer'], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 2 and "--steps: choose from ('statistics_gen'" in result.stderr
