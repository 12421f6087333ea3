"""bench/read_examples.py: the Trainer's read of a finished run's Transform output, timed with
tf.data's autotuning off and on."""

import re
import subprocess
import sys

from tests.conftest import PROJECT_DIR


def test_reads_every_copy_with_autotuning_off_and_on_in_turn(finished_run):
  _, output_dir, _, summary = finished_run
  result = subprocess.run([sys.executable, '-m', 'bench.read_examples', '--run-dir', output_dir,
                           '--copies', '2', '--reads', '1'], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  reads = re.findall(r'autotuning (on|off)\s+read 1: ([\d,]+) examples in [\d.]+ s, '
                     r'iterator deleted in [\d.]+ s', result.stdout)
  assert [mode for mode, _ in reads] == ['off', 'on', 'off', 'on']
  train_ratings = summary['data']['num_ratings']['train']
  assert {int(count.replace(',', '')) for _, count in reads} == {2 * train_ratings}


def test_a_run_dir_without_transform_output_is_refused(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'bench.read_examples', '--run-dir',
                           str(tmp_path), '--autotune', 'off'], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode != 0 and 'nothing matches' in result.stderr
