"""The concurrent local runner on real TFX components, ML Metadata (SQLite) and launchers.

Each component records when it ran; the DAG has the pipeline's shape: one component, then two
branches of a Trainer followed by an Evaluator.
"""

import json
import os
import time

import pytest
from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component

from pipeline import concurrent_runner
from pipeline import progress as progress_lib


@component
def Step(log_dir: Parameter[str], seconds: Parameter[float], fail: Parameter[int] = 0):  # noqa: N802  (TFX component names are classes)
  """Sleeps `seconds` and records its run (start, end) under `log_dir`; fails if asked."""
  started = time.time()
  time.sleep(seconds)
  if fail:
    raise RuntimeError('asked to fail')
  name = f'{started:.6f}-{os.getpid()}-{time.monotonic_ns()}.json'
  with open(os.path.join(log_dir, name), 'w') as f:
    json.dump({'start': started, 'end': time.time()}, f)


def _pipeline(root, seconds, fail=(), cache=False):
  log_dir = root / 'log'
  log_dir.mkdir(exist_ok=True)
  nodes = {}

  def step(node_id, *upstream):
    node = Step(log_dir=str(log_dir / node_id), seconds=seconds,
                fail=int(node_id in fail)).with_id(node_id)
    (log_dir / node_id).mkdir(exist_ok=True)
    for other in upstream:
      node.add_upstream_node(nodes[other])
    nodes[node_id] = node

  step('Prepare')
  for model in ('a', 'b'):
    step(f'Trainer_{model}', 'Prepare')
    step(f'Evaluator_{model}', f'Trainer_{model}')
  return tfx.dsl.Pipeline(
      pipeline_name='concurrency', pipeline_root=str(root / 'tfx'), components=list(nodes.values()),
      enable_cache=cache,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          str(root / 'metadata.sqlite')))


def _runs(root):
  """{node id: [(start, end), ...]} from the components' own records."""
  runs = {}
  for node_id in os.listdir(root / 'log'):
    runs[node_id] = [tuple(json.load(open(root / 'log' / node_id / name)).values())
                     for name in sorted(os.listdir(root / 'log' / node_id))]
  return runs


def _overlap(a, b):
  return a[0] < b[1] and b[0] < a[1]


def test_branches_run_concurrently_trainers_never_together(tmp_path, capsys):
  progress = progress_lib.ComponentProgress(open(os.devnull, 'w'))
  with progress_lib.track_components(progress):
    concurrent_runner.ConcurrentLocalDagRunner(2).run(_pipeline(tmp_path, seconds=2.0))
  runs = {node_id: spans[0] for node_id, spans in _runs(tmp_path).items()
          if len(spans) == 1}
  assert sorted(runs) == ['Evaluator_a', 'Evaluator_b', 'Prepare', 'Trainer_a', 'Trainer_b']
  for model in ('a', 'b'):  # dependencies hold
    assert runs['Prepare'][1] <= runs[f'Trainer_{model}'][0]
    assert runs[f'Trainer_{model}'][1] <= runs[f'Evaluator_{model}'][0]
  assert not _overlap(runs['Trainer_a'], runs['Trainer_b'])  # one Trainer at a time
  # One model's evaluation ran while the other model trained.
  assert (_overlap(runs['Evaluator_a'], runs['Trainer_b'])
          or _overlap(runs['Evaluator_b'], runs['Trainer_a']))
  assert sorted(progress.durations) == sorted(runs) and progress.failed_node is None


def test_a_failure_stops_new_launches_and_is_raised(tmp_path):
  progress = progress_lib.ComponentProgress(open(os.devnull, 'w'))
  with progress_lib.track_components(progress), pytest.raises(RuntimeError,
                                                              match='asked to fail'):
    concurrent_runner.ConcurrentLocalDagRunner(2).run(
        _pipeline(tmp_path, seconds=0.5, fail=('Trainer_a',)))
  runs = _runs(tmp_path)
  assert progress.failed_node == 'Trainer_a'
  assert runs['Trainer_a'] == [] and runs['Evaluator_a'] == []  # failed, and never launched
  assert len(runs['Prepare']) == 1


def test_cached_rerun_launches_nothing_new(tmp_path):
  runner = concurrent_runner.ConcurrentLocalDagRunner(2)
  runner.run(_pipeline(tmp_path, seconds=0.2, cache=True))
  runner.run(_pipeline(tmp_path, seconds=0.2, cache=True))
  assert {node_id: len(spans) for node_id, spans in _runs(tmp_path).items()} == {
      'Prepare': 1, 'Trainer_a': 1, 'Trainer_b': 1, 'Evaluator_a': 1, 'Evaluator_b': 1}


def test_progress_lines_stay_whole_when_components_overlap():
  class Stream:
    text = ''

    def write(self, s):
      self.text += s

    def flush(self):
      pass

  stream = Stream()
  progress = progress_lib.ComponentProgress(stream)
  progress.started('Trainer_b')
  progress.started('Evaluator_a')
  progress.finished('Evaluator_a', 3.0, True)   # finishes while Trainer_b's line is open
  progress.finished('Trainer_b', 5.0, True)
  assert stream.text.splitlines() == ['[ 1] Trainer_b ... ',
                                      '[ 2] Evaluator_a ... done in 3.0 s',
                                      '[ 1] Trainer_b ... done in 5.0 s']
