"""`ConcurrentLocalDagRunner`: TFX's LocalDagRunner, launching each component as soon as the
components it depends on have finished, a few at a time.

TFX 1.16's LocalDagRunner runs the components one after another (its source has a TODO to run
independent ones in parallel). Our DAG has two independent branches after Transform (one
Trainer -> Evaluator -> Pusher per model), and a Trainer keeps both cores busy with TensorFlow
while an Evaluator mostly runs Python in Beam: one model's evaluation overlaps the other's
training. Kubeflow runs the same DAG the same way (each component in its own pod).

What keeps this as correct as the sequential runner:
- ML Metadata (SQLite) is opened by one component at a time: launchers only open it to decide
  whether and with what inputs to run (and to find cached results) and to publish outputs;
  those short sections are serialised, executors run outside them.
- Components whose executors change process-wide state that another one relies on never run
  together (`exclusive` names their group): the Trainers seed TensorFlow's global random state
  (`tf.keras.utils.set_random_seed`), so two of them are never trained at once and training
  stays repeatable.
- The first failure stops the run: nothing new is launched, the running components finish, and
  the failure is raised as the sequential runner raises it.
"""

import concurrent.futures
import datetime
import threading
from typing import Callable, Dict, Optional

from absl import logging
from tfx import v1 as tfx
from tfx.orchestration import metadata
from tfx.orchestration.portable import launcher
from tfx.orchestration.portable import runtime_parameter_utils
from tfx.orchestration.local import runner_utils
from tfx.dsl.compiler import constants
from tfx.proto.orchestration import pipeline_pb2

_MLMD_LOCK = threading.RLock()


class _SerialisedMetadata(metadata.Metadata):
  """An ML Metadata connection that only one thread of the process has open at a time."""

  def __enter__(self):
    _MLMD_LOCK.acquire()
    try:
      return super().__enter__()
    except BaseException:
      _MLMD_LOCK.release()
      raise

  def __exit__(self, *args):
    try:
      super().__exit__(*args)
    finally:
      _MLMD_LOCK.release()


def trainer_group(node_id: str) -> Optional[str]:
  """The default exclusive groups: every Trainer in one (they seed TF's global state)."""
  return 'trainer' if node_id.startswith('Trainer') else None


class ConcurrentLocalDagRunner(tfx.orchestration.LocalDagRunner):
  """Runs the pipeline locally, up to `max_workers` components at a time (see module doc)."""

  def __init__(self, max_workers: int = 2,
               exclusive: Callable[[str], Optional[str]] = trainer_group):
    super().__init__()
    if max_workers < 1:
      raise ValueError(f'max_workers must be at least 1, got {max_workers}')
    self._max_workers = max_workers
    self._exclusive = exclusive

  def run_with_ir(self, pipeline: pipeline_pb2.Pipeline,
                  run_options: Optional[pipeline_pb2.RunOptions] = None) -> None:
    if run_options or self._max_workers == 1:  # partial runs: TFX's own, sequential path
      return super().run_with_ir(pipeline, run_options)
    runtime_parameter_utils.substitute_runtime_parameter(pipeline, {
        constants.PIPELINE_RUN_ID_PARAMETER_NAME: datetime.datetime.now().isoformat()})
    deployment_config = runner_utils.extract_local_deployment_config(pipeline)
    connection_config = getattr(
        deployment_config.metadata_connection_config,
        deployment_config.metadata_connection_config.WhichOneof('connection_config'))

    nodes = [node.pipeline_node for node in pipeline.nodes
             if not node.pipeline_node.execution_options.HasField('skip')]
    ids = [node.node_info.id for node in nodes]  # in topological order
    by_id = dict(zip(ids, nodes))
    waiting_for = {node_id: set(by_id[node_id].upstream_nodes) & set(ids) for node_id in ids}

    def launch(node_id: str) -> None:
      logging.info('Component %s is running.', node_id)
      launcher.Launcher(
          pipeline_node=by_id[node_id],
          mlmd_connection=_SerialisedMetadata(connection_config),
          pipeline_info=pipeline.pipeline_info,
          pipeline_runtime_spec=pipeline.runtime_spec,
          executor_spec=runner_utils.extract_executor_spec(deployment_config, node_id),
          custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config,
                                                                     node_id),
      ).launch()
      logging.info('Component %s is finished.', node_id)

    done, failure = set(), None
    running: Dict[concurrent.futures.Future, str] = {}
    with concurrent.futures.ThreadPoolExecutor(self._max_workers,
                                               thread_name_prefix='component') as pool:
      while True:
        busy_groups = {self._exclusive(i) for i in running.values()} - {None}
        for node_id in ids:
          if failure is not None or len(running) >= self._max_workers:
            break
          group = self._exclusive(node_id)
          if (node_id in done or node_id in running.values() or not waiting_for[node_id] <= done
              or (group is not None and group in busy_groups)):
            continue
          running[pool.submit(launch, node_id)] = node_id
          if group is not None:
            busy_groups.add(group)
        if not running:
          break
        finished, _ = concurrent.futures.wait(running,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
        for future in finished:
          node_id = running.pop(future)
          if future.exception() is None:
            done.add(node_id)
          elif failure is None:
            failure = future.exception()
    if failure is not None:
      raise failure
    never_ready = [i for i in ids if i not in done]
    if never_ready:  # an upstream node outside the pipeline: never silently skipped
      raise RuntimeError(f'components never became ready: {never_ready}')
