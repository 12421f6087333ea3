"""TFX's LocalDagRunner, but components that do not depend on each other run at the same time.

TFX 1.16's local runner launches one component after the other (its TODO b/171319478 plans
threads). This pipeline has two independent branches after Transform, and on big data their
components use different resources: a Trainer is mostly TensorFlow ops on every core, with
Python's GIL released, while an Evaluator is mostly TFMA's per-example Python on one core. So
here the CF Evaluator runs beside the content_based Trainer (on ML-100K, where a Trainer is
mostly Python tracing, the two share the GIL and gain nothing; docs/performance.md).

Rules:
- a component starts when all its upstream components have finished, in the pipeline's
  (topological) order, at most `max_parallel` at a time; components whose id ends with one of
  `first` go before the others that are ready (pipeline/local.py puts the content_based branch
  first: its Trainer is the longest step, and alone it takes half the time it takes beside
  the other branch's Evaluator, 28.8 s against 64.8 s on ML-100K);
- never two components of the same type at once: two Trainers would share TensorFlow's global
  seed and compete for the same cores, two Evaluators for the GIL;
- ML Metadata is one SQLite file: its uses (a launch's preparation and publication, not the
  executor's work) are serialized;
- after a failure nothing new starts; the components already running finish, then the first
  error is raised, as the sequential runner would;
- components run in daemon threads, so Ctrl-C stops the run at once, as it stops TFX's runner;
  ML Metadata then records them as still running, and the next run redoes them;
- the executors of the components in `own_process` (ids) run each in a new Python process
  (components/tfx/executor_process.py), so that what they keep in memory is given back when
  they end; the launcher and ML Metadata stay here.
"""

import datetime
import queue
import threading
from typing import Collection, Dict, Optional, Sequence, Set

from absl import logging
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import local_dag_runner
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher
from tfx.orchestration.portable import partial_run_utils
from tfx.orchestration.portable import runtime_parameter_utils
from tfx.proto.orchestration import pipeline_pb2

from components.tfx import executor_process

_METADATA_LOCK = threading.RLock()


class _SerializedMetadata(metadata.Metadata):
  """An MLMD handle whose opened sections never overlap with another thread's."""

  def __enter__(self) -> 'metadata.Metadata':
    _METADATA_LOCK.acquire()
    try:
      return super().__enter__()
    except BaseException:
      _METADATA_LOCK.release()
      raise

  def __exit__(self, *exc_info) -> None:
    try:
      super().__exit__(*exc_info)
    finally:
      _METADATA_LOCK.release()


class ConcurrentLocalDagRunner(local_dag_runner.LocalDagRunner):
  """Runs independent components at once, under the rules of this module's docstring."""

  def __init__(self, max_parallel: int = 2, first: Sequence[str] = (),
               own_process: Collection[str] = ()):
    super().__init__()
    if max_parallel < 1:
      raise ValueError(f'max_parallel must be at least 1, not {max_parallel}')
    self._max_parallel, self._first = max_parallel, tuple(first)
    self._own_process = frozenset(own_process)

  def run_with_ir(self, pipeline: pipeline_pb2.Pipeline,
                  run_options: Optional[pipeline_pb2.RunOptions] = None) -> None:
    # The preamble of LocalDagRunner.run_with_ir (TFX 1.16), unchanged.
    runtime_parameter_utils.substitute_runtime_parameter(pipeline, {
        constants.PIPELINE_RUN_ID_PARAMETER_NAME: datetime.datetime.now().isoformat()})
    deployment_config = runner_utils.extract_local_deployment_config(pipeline)
    connection_config = getattr(
        deployment_config.metadata_connection_config,
        deployment_config.metadata_connection_config.WhichOneof('connection_config'))
    if run_options:
      partial = run_options.partial_run
      partial_run_utils.mark_pipeline(pipeline, from_nodes=partial.from_nodes or None,
                                      to_nodes=partial.to_nodes or None,
                                      snapshot_settings=partial.snapshot_settings)

    nodes = [n.pipeline_node for n in pipeline.nodes]
    finished: Set[str] = {n.node_info.id for n in nodes if n.execution_options.HasField('skip')}
    for node_id in finished:
      logging.info('Skipping component %s.', node_id)
    # Stable: the topological order, except that nodes whose id ends with one of `first`
    # are offered a free slot before the others.
    waiting = sorted((n for n in nodes if n.node_info.id not in finished),
                     key=lambda n: not (self._first and n.node_info.id.endswith(self._first)))
    running: Dict[str, pipeline_pb2.PipelineNode] = {}
    results: 'queue.Queue[tuple]' = queue.Queue()
    error: Optional[BaseException] = None

    def run_node(node: pipeline_pb2.PipelineNode) -> None:
      node_id = node.node_info.id
      try:
        logging.info('Component %s is running.', node_id)
        launcher.Launcher(
            pipeline_node=node,
            mlmd_connection=_SerializedMetadata(connection_config),
            pipeline_info=pipeline.pipeline_info,
            pipeline_runtime_spec=pipeline.runtime_spec,
            executor_spec=runner_utils.extract_executor_spec(deployment_config, node_id),
            custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config,
                                                                       node_id),
            custom_executor_operators=(
                dict.fromkeys(executor_process.SPEC_TYPES,
                              executor_process.ExecutorProcessOperator)
                if node_id in self._own_process else None),
        ).launch()
        logging.info('Component %s is finished.', node_id)
        results.put((node_id, None))
      except BaseException as e:  # pylint: disable=broad-except  (re-raised by the main thread)
        results.put((node_id, e))

    # Daemon threads, not a pool: Ctrl-C stops the run at once, as with TFX's runner, instead
    # of waiting for the components in flight (a pool joins its threads at exit).
    while running or (waiting and error is None):
      if error is None:
        for node in list(waiting):
          busy_types = {n.node_info.type.name for n in running.values()}
          if (len(running) < self._max_parallel
              and set(node.upstream_nodes) <= finished
              and node.node_info.type.name not in busy_types):
            waiting.remove(node)
            if node.execution_options.run.perform_snapshot:
              with _SerializedMetadata(connection_config) as handle:
                partial_run_utils.snapshot(handle, pipeline)
            running[node.node_info.id] = node
            threading.Thread(target=run_node, args=(node,), name=node.node_info.id,
                             daemon=True).start()
      if not running:
        raise RuntimeError('components wait for upstream components that never run: '
                           + ', '.join(n.node_info.id for n in waiting))
      node_id, failure = results.get()
      del running[node_id]
      if failure is None:
        finished.add(node_id)
      else:
        error = error or failure
    if error is not None:
      raise error
