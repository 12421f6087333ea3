"""Big steps in processes of their own (components/tfx/executor_process.py): which steps, from
which size, and that a real Beam step run that way writes what it writes in the runner."""

import argparse
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow_data_validation as tfdv
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline

from components.models import model_names as names
from pipeline import cli
from pipeline import concurrent_runner
from pipeline import configs
from pipeline import local
from pipeline import partial
from pipeline import pipeline as pipeline_def
from tests.conftest import PROJECT_DIR


@pytest.mark.parametrize('threshold, ratings, own', [
    (1_000_000, 100_000, False),
    (1_000_000, 1_000_000, True),
    (1_000_000, 25_000_000, True),
    (1_000_000, 0, False),   # not counted: in the runner, as before
    (0, 25_000_000, False),  # 0: never
    (1, 100_000, True),      # 1: always
])
def test_big_data_runs_the_big_steps_in_processes_of_their_own(threshold, ratings, own):
  settings = configs.PipelineSettings(own_processes_from_ratings=threshold)
  assert settings.executors_in_own_processes(ratings) is own


def test_the_big_steps_are_example_gen_statistics_transform_trainers_and_evaluators(
    tmp_path, ml100k_dir):
  data = partial.prepared_with_schema(ml100k_dir, str(tmp_path))
  settings = configs.PipelineSettings(output_dir=str(tmp_path / 'out'))
  dag = pipeline_def.create_pipeline(settings, data, names.MODEL_NAMES)
  assert local.own_process_ids(settings, dag, 100_000) == []
  ids = local.own_process_ids(settings, dag, 25_000_000)
  assert sorted(ids) == sorted(
      ['CsvExampleGen', 'StatisticsGen', 'Transform']
      + [pipeline_def.node_ids(m)[step] for m in names.MODEL_NAMES
         for step in ('trainer', 'evaluator')])


def test_the_flag_sets_the_threshold_and_refuses_a_negative_one():
  parser = argparse.ArgumentParser()
  cli.add_settings_arguments(parser)
  assert (cli.settings_from_args(parser.parse_args([]), 'out').own_processes_from_ratings
          == configs.DEFAULT_OWN_PROCESSES_FROM_RATINGS)
  assert cli.settings_from_args(parser.parse_args(['--own-processes-from', '0']),
                                'out').own_processes_from_ratings == 0
  with pytest.raises(ValueError, match='--own-processes-from must be 0 .* got -5'):
    cli.settings_from_args(parser.parse_args(['--own-processes-from', '-5']), 'out')


def _statistics(tmp_path, data, own_process, monkeypatch):
  """ML-100K's training statistics from CsvExampleGen and StatisticsGen, run by the concurrent
  runner with the executors of `own_process` in processes of their own; and the processes
  started."""
  settings = configs.PipelineSettings(output_dir=str(tmp_path))
  example_gen, statistics_gen = pipeline_def.examples_and_statistics(settings, data)
  started = []
  call = subprocess.call
  monkeypatch.setattr(subprocess, 'call', lambda *a, **k: started.append(a[0]) or call(*a, **k))
  concurrent_runner.ConcurrentLocalDagRunner(own_process=own_process).run(tfx_pipeline.Pipeline(
      pipeline_name='own', pipeline_root=settings.pipeline_root,
      components=[example_gen, statistics_gen], enable_cache=False,
      metadata_connection_config=metadata.sqlite_metadata_connection_config(
          settings.metadata_path)))
  [folder] = [root for root, dirs, _ in os.walk(tmp_path / 'tfx' / 'StatisticsGen')
              if 'Split-train' in dirs]
  return tfdv.load_stats_binary(os.path.join(folder, 'Split-train', 'FeatureStats.pb')), started


def test_beam_steps_in_their_own_processes_write_what_they_write_in_the_runner(
    tmp_path, ml100k_dir, monkeypatch):
  data = partial.prepared_with_schema(ml100k_dir, str(tmp_path / 'data'))
  own, started = _statistics(tmp_path / 'own', data, ('CsvExampleGen', 'StatisticsGen'),
                             monkeypatch)
  assert len(started) == 2
  here, started = _statistics(tmp_path / 'here', data, (), monkeypatch)
  assert not started
  assert own.datasets[0].num_examples == 80_000
  assert own == here


RUNNER = """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, '-c', sys.argv[1], str(os.getpid()), sys.argv[2]])
time.sleep(600)
"""
EXECUTOR = """
import os, sys, time
from components.tfx import executor_process
executor_process.stop_with_parent(int(sys.argv[1]))
with open(sys.argv[2] + '.part', 'w') as f:
  f.write(str(os.getpid()))
os.rename(sys.argv[2] + '.part', sys.argv[2])
time.sleep(600)
"""


def _alive(pid: int) -> bool:
  try:
    with open(f'/proc/{pid}/status', encoding='utf-8') as f:
      return 'State:\tZ' not in f.read()  # a zombie has ended
  except FileNotFoundError:
    return False


def test_an_executor_process_ends_when_its_runner_is_killed(tmp_path):
  pid_file = tmp_path / 'executor.pid'
  runner = subprocess.Popen([sys.executable, '-c', RUNNER, EXECUTOR, str(pid_file)],
                            cwd=PROJECT_DIR)
  try:
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline:
      time.sleep(0.2)
    executor = int(pid_file.read_text())
    assert _alive(executor)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 30
    while _alive(executor) and time.monotonic() < deadline:
      time.sleep(0.2)
    assert not _alive(executor)
  finally:
    runner.kill()
