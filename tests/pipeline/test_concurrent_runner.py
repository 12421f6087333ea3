"""The concurrent local runner, on real TFX components, ML Metadata in SQLite and threads.

Each component below records when it ran; the tests check which ran side by side.
"""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.types import standard_artifacts

from pipeline import concurrent_runner
from pipeline import progress as progress_lib
from tests.conftest import PROJECT_DIR

STEP_SECONDS = 1.0


def _record(log_dir: str, name: str, fail: bool = False) -> None:
  if fail:  # at once, while the other branch's component still runs
    raise RuntimeError(f'{name} failed on purpose')
  started = time.time()
  open(os.path.join(log_dir, f'{name}.started'), 'w', encoding='utf-8').close()
  time.sleep(600 if name in os.environ.get('LONG_STEPS', '').split(',') else STEP_SECONDS)
  with open(os.path.join(log_dir, f'{name}.json'), 'w', encoding='utf-8') as f:
    json.dump([started, time.time(), os.getpid()], f)


@component
def Source(log_dir: Parameter[str], out: OutputArtifact[standard_artifacts.Examples]):  # pylint: disable=invalid-name
  del out
  _record(log_dir, 'Source')


@component
def Fit(log_dir: Parameter[str], name: Parameter[str], data: InputArtifact[standard_artifacts.Examples],  # pylint: disable=invalid-name
        out: OutputArtifact[standard_artifacts.Model]):
  del data, out
  _record(log_dir, name)


@component
def Check(log_dir: Parameter[str], name: Parameter[str], model: InputArtifact[standard_artifacts.Model],  # pylint: disable=invalid-name
          fail: Parameter[bool] = False):
  del model
  _record(log_dir, name, fail)


def _run(tmp_path, fail_check_a: bool = False, max_parallel: int = 2, first=(), own_process=()):
  """Source -> Fit_a -> Check_a, Source -> Fit_b -> Check_b."""
  log_dir = str(tmp_path / 'log')
  os.makedirs(log_dir, exist_ok=True)
  source = Source(log_dir=log_dir)
  components = [source]
  for branch in 'ab':
    fit = Fit(log_dir=log_dir, name=f'Fit_{branch}',
              data=source.outputs['out']).with_id(f'Fit_{branch}')
    check = Check(log_dir=log_dir, name=f'Check_{branch}', model=fit.outputs['out'],
                  fail=fail_check_a and branch == 'a').with_id(f'Check_{branch}')
    components += [fit, check]
  pipeline = tfx_pipeline.Pipeline(
      pipeline_name='concurrency', pipeline_root=str(tmp_path / 'root'),
      components=components, enable_cache=False,
      metadata_connection_config=metadata.sqlite_metadata_connection_config(
          str(tmp_path / 'metadata.sqlite')))
  progress = progress_lib.ComponentProgress(open(os.devnull, 'w', encoding='utf-8'))  # pylint: disable=consider-using-with
  error = None
  with progress_lib.track_components(progress):
    try:
      concurrent_runner.ConcurrentLocalDagRunner(max_parallel, first, own_process).run(pipeline)
    except Exception as e:  # pylint: disable=broad-except  (TFX's launcher raises its own)
      error = e
  spans = {}
  for name in [n for n in os.listdir(log_dir) if n.endswith('.json')]:
    with open(os.path.join(log_dir, name), encoding='utf-8') as f:
      spans[name[:-len('.json')]] = json.load(f)
  return spans, progress, error


def _overlap(spans, a: str, b: str) -> bool:
  return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]


def test_independent_components_of_different_types_run_side_by_side(tmp_path):
  spans, progress, error = _run(tmp_path)
  assert error is None
  assert set(spans) == {'Source', 'Fit_a', 'Fit_b', 'Check_a', 'Check_b'}
  assert not _overlap(spans, 'Fit_a', 'Fit_b')  # one component of a type at a time
  assert not _overlap(spans, 'Check_a', 'Check_b')
  assert _overlap(spans, 'Check_a', 'Fit_b')  # a check beside the other branch's fit
  for branch in 'ab':  # every component after its upstream one
    assert spans[f'Fit_{branch}'][0] >= spans['Source'][1]
    assert spans[f'Check_{branch}'][0] >= spans[f'Fit_{branch}'][1]
  assert sorted(progress.order) == ['Check_a', 'Check_b', 'Fit_a', 'Fit_b', 'Source']
  assert all(progress.durations[node] >= STEP_SECONDS for node in progress.order)


def test_the_branch_named_first_starts_first(tmp_path):
  """By default branch a's Fit goes first (topological order); `first` puts b's first."""
  spans, _, error = _run(tmp_path, first=('_b',))
  assert error is None
  assert spans['Fit_b'][1] <= spans['Fit_a'][0]
  assert _overlap(spans, 'Check_b', 'Fit_a')  # and b's check runs beside a's fit
  default, _, _ = _run(tmp_path / 'default')
  assert default['Fit_a'][1] <= default['Fit_b'][0]


def test_one_at_a_time_when_asked(tmp_path):
  spans, _, error = _run(tmp_path, max_parallel=1)
  assert error is None
  ordered = sorted(spans.values())
  assert all(earlier[1] <= later[0] for earlier, later in zip(ordered, ordered[1:]))


def test_a_failure_lets_running_components_finish_and_starts_nothing_new(tmp_path):
  spans, progress, error = _run(tmp_path, fail_check_a=True)
  assert 'Check_a failed on purpose' in str(error)
  assert progress.failed_node == 'Check_a'
  # Fit_b ran beside Check_a and finished; Check_b, which would start after it, never ran.
  assert 'Fit_b' in spans and 'Check_b' not in spans and 'Check_a' not in spans
  assert 'Check_b' not in progress.order


def test_executors_run_in_processes_of_their_own_when_asked(tmp_path, monkeypatch):
  started = []
  call = subprocess.call
  monkeypatch.setattr(subprocess, 'call', lambda *a, **k: started.append(a[0]) or call(*a, **k))
  spans, progress, error = _run(tmp_path, own_process=('Fit_a', 'Check_a'))
  assert error is None
  assert len(started) == 2 and all('components.tfx.executor_process' in c for c in started)
  assert spans['Fit_a'][2] != os.getpid() and spans['Check_a'][2] != os.getpid()
  assert spans['Fit_a'][2] != spans['Check_a'][2]  # a new process for each
  assert spans['Source'][2] == spans['Fit_b'][2] == os.getpid()
  assert sorted(progress.order) == ['Check_a', 'Check_b', 'Fit_a', 'Fit_b', 'Source']


def test_an_executor_failing_in_its_own_process_fails_the_run_with_its_error(tmp_path):
  spans, progress, error = _run(tmp_path, fail_check_a=True, own_process=('Check_a',))
  assert 'RuntimeError: Check_a failed on purpose' in str(error)
  assert progress.failed_node == 'Check_a'
  assert 'Fit_b' in spans and 'Check_b' not in spans


def test_ctrl_c_stops_the_run_at_once(tmp_path):
  """Components run in threads; an interrupt must not wait for them to finish."""
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      # Python keeps SIGINT ignored when it starts with it ignored (a background job, as CI may
      # run the suite), so the child restores a terminal's Ctrl-C first.
      [sys.executable, '-c', 'import pathlib, signal, sys; '
       'signal.signal(signal.SIGINT, signal.default_int_handler); '
       'from tests.pipeline import test_concurrent_runner as t; t._run(pathlib.Path(sys.argv[1]))',
       str(tmp_path)],
      cwd=PROJECT_DIR, env=dict(os.environ, LONG_STEPS='Check_a,Fit_b'),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  started = [str(tmp_path / 'log' / f'{name}.started') for name in ('Check_a', 'Fit_b')]
  try:
    deadline = time.monotonic() + 120
    while not all(os.path.exists(path) for path in started):
      assert process.poll() is None and time.monotonic() < deadline, process.communicate()
      time.sleep(0.2)
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
  finally:
    process.kill()
  assert time.monotonic() - interrupted < 15, 'waited for the running components'
  assert process.returncode != 0 and b'KeyboardInterrupt' in stderr


def test_progress_lines_of_components_that_overlap():
  lines = io.StringIO()
  progress = progress_lib.ComponentProgress(lines)
  progress.started('Fit_a')
  progress.finished('Fit_a', 2.0, ok=True)
  progress.started('Fit_b')
  progress.started('Check_a')
  progress.finished('Check_a', 1.0, ok=False)
  progress.finished('Fit_b', 3.0, ok=True)
  assert lines.getvalue().splitlines() == [
      '[ 1] Fit_a ... done in 2.0 s',
      '[ 2] Fit_b ... running',
      '[ 3] Check_a ... FAILED in 1.0 s',
      '[ 2] Fit_b ... done in 3.0 s']
  assert progress.failed_node == 'Check_a'
  assert progress.order == ['Fit_a', 'Fit_b', 'Check_a']


def test_max_parallel_must_be_positive():
  with pytest.raises(ValueError, match='at least 1'):
    concurrent_runner.ConcurrentLocalDagRunner(0)
