"""Runs a component's executor in a Python process of its own, as Kubeflow runs each in its pod.

Why: in one local process, what TensorFlow, TFMA and Beam keep after a component has ended stays
with the runner, and the next component's memory comes on top. On the synthetic 25M the
runner still held 6.8-7.0 GiB while only the last Evaluator ran (docs/performance.md). A process
that exits gives all of it back.

`ExecutorProcessOperator` is a TFX executor operator (the launcher's `custom_executor_operators`)
for Python and Beam executors. It writes the executable spec and the `ExecutionInfo` to the
execution's tmp folder, serialized as TFX's Python execution binary takes them in its flags, and
runs this module on them in a new Python process. There TFX's dispatcher of its Python execution binary
(tfx.orchestration.python_execution_binary) runs the executor, as in the runner, and writes
its ExecutorOutput where the launcher reads it. ML Metadata stays with the launcher in the
runner, so no second process writes to the SQLite store. A failed executor's error is sent back
as the output's result message, so the run reports it as it would in-process. The child
process inherits the runner's environment (TF_USE_LEGACY_KERAS) and its stdout and stderr (the
run log). It ends with the runner, however the runner ends. It imports the project's code when
it starts, so code edited during a run is what the later steps run: do not edit a checkout
that is running.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import ctypes
import os
import signal
import subprocess
import sys
import traceback

from tfx.dsl.io import fileio
from tfx.orchestration.portable import base_executor_operator
from tfx.orchestration.portable import data_types
from tfx.orchestration.python_execution_binary import python_execution_binary_utils as binary_utils
from tfx.proto.orchestration import executable_spec_pb2
from tfx.proto.orchestration import execution_result_pb2

from components import atomic_files

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = 'components.tfx.executor_process'
# Three lines: 'beam' or 'python', then the executable spec and the ExecutionInfo, each in base64
# as TFX's Python execution binary takes them in its flags.
EXECUTION_FILE = 'execution.b64'
SPEC_TYPES = (executable_spec_pb2.PythonClassExecutableSpec,
              executable_spec_pb2.BeamExecutableSpec)


def _error_output(message: str) -> execution_result_pb2.ExecutorOutput:
  return execution_result_pb2.ExecutorOutput(
      execution_result=execution_result_pb2.ExecutionResult(code=1, result_message=message))


class ExecutorProcessOperator(base_executor_operator.BaseExecutorOperator):
  """Runs a Python or Beam executor in a new Python process (this module's docstring)."""

  SUPPORTED_EXECUTOR_SPEC_TYPE = list(SPEC_TYPES)
  SUPPORTED_PLATFORM_CONFIG_TYPE = []

  def __init__(self, executor_spec, platform_config=None, pipeline_platform_config=None):
    del platform_config, pipeline_platform_config  # local processes: no resources to ask for
    super().__init__(executor_spec)

  def run_executor(
      self, execution_info: data_types.ExecutionInfo) -> execution_result_pb2.ExecutorOutput:
    folder = execution_info.tmp_dir
    fileio.makedirs(folder)
    with_beam = isinstance(self._executor_spec, executable_spec_pb2.BeamExecutableSpec)
    atomic_files.write(os.path.join(folder, EXECUTION_FILE), '\n'.join([
        'beam' if with_beam else 'python',
        binary_utils.serialize_executable_spec(self._executor_spec),
        binary_utils.serialize_execution_info(execution_info)]))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (PROJECT_DIR, env.get('PYTHONPATH')) if p)
    code = subprocess.call([sys.executable, '-m', MODULE, folder, str(os.getpid())], env=env)
    if fileio.exists(execution_info.execution_output_uri):
      with fileio.open(execution_info.execution_output_uri, 'rb') as f:
        output = execution_result_pb2.ExecutorOutput.FromString(f.read())
      if code == 0 or output.execution_result.code:
        return output
    return _error_output(f'the executor process exited with code {code} and no result '
                         '(its output is in the run log)')


def stop_with_parent(parent_pid: int) -> None:
  """Asks Linux to kill this process when its parent ends (PR_SET_PDEATHSIG): a runner killed
  without a chance to clean up (SIGKILL, out of memory) leaves no executor running on, and the
  next run redoes the component. Exits at once if the parent has already gone."""
  try:
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
  except (OSError, AttributeError):  # not Linux: the executor outlives a killed runner
    return
  if os.getppid() != parent_pid:
    os._exit(1)  # pylint: disable=protected-access  (nothing started yet to clean up)


def run_in_this_process(folder: str) -> int:
  """The child's side: runs the executor described in `folder`; 0 when it succeeded."""
  from tfx.orchestration.python_execution_binary import python_executor_operator_dispatcher as dispatcher  # pylint: disable=import-outside-toplevel
  with open(os.path.join(folder, EXECUTION_FILE), encoding='ascii') as f:
    kind, spec_b64, execution_b64 = f.read().split('\n')
  spec = binary_utils.deserialize_executable_spec(spec_b64, with_beam=kind == 'beam')
  binary_utils.import_class_path(spec)  # before the artifacts are parsed: their types resolve
  execution_info = binary_utils.deserialize_execution_info(execution_b64)
  try:
    output = dispatcher.run_executor(spec, execution_info)
  except Exception as e:  # pylint: disable=broad-except  (sent back to the launcher)
    traceback.print_exc()
    output = _error_output(f'{type(e).__name__}: {e}')
  atomic_files.write(execution_info.execution_output_uri, output.SerializeToString())
  return output.execution_result.code


if __name__ == '__main__':
  stop_with_parent(int(sys.argv[2]))
  sys.exit(run_in_this_process(sys.argv[1]))
