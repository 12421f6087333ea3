"""Servability check: would stock TF Serving load and run these SavedModels?

    python -m serving.check runs/local/serving            # the latest version of every model
    python -m serving.check runs/local/serving/content_based/1732780000

For each SavedModel: every op in the graph and its functions must be a core TensorFlow op that
the stock `tensorflow/serving` build of our version has (ops registered by tensorflow-text,
tensorflow-addons, ScaNN and other op libraries are not; `py_function` ops need a Python runtime
TF Serving does not have), the model must not come from a newer TensorFlow than that server, and
it must load and answer its warm-up requests (`assets.extra/`) as TF Serving would. Prints each
model's signatures; exits 1 when any model fails.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import dataclasses
import os
import sys
from typing import List

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from serving import model_config

TF_SERVING_VERSION = '2.16.1'  # the tensorflow/serving image of serving/docker-compose.yml
# Core ops whose kernels call back into Python: TF Serving has no Python to call.
_PYTHON_OPS = {'PyFunc', 'PyFuncStateless', 'EagerPyFunc'}


@dataclasses.dataclass
class Report:
  path: str
  problems: List[str]
  signatures: List[str]


def saved_model_dirs(path: str) -> List[str]:
  """The SavedModels a path stands for: itself, its latest version, or each model's latest."""
  if os.path.isfile(os.path.join(path, 'saved_model.pb')):
    return [path]
  if not os.path.isdir(path):
    raise ValueError(f'{path}: no such folder')
  latest = model_config.latest_version_path(path)
  if latest:
    return [latest]
  found = [model_config.latest_version_path(os.path.join(path, name))
           for name in sorted(os.listdir(path))]
  found = [d for d in found if d]
  if not found:
    raise ValueError(f'{path}: no SavedModel (saved_model.pb), version folder or model folder')
  return found


def graph_ops(saved_model: saved_model_pb2.SavedModel) -> set:
  """Every op type in the graphs and their function libraries."""
  ops = set()
  for meta_graph in saved_model.meta_graphs:
    ops.update(node.op for node in meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
      ops.update(node.op for node in function.node_def)
  return ops


def _version_tuple(version: str):
  return tuple(int(p) for p in version.split('.')[:2] if p.isdigit())


def check(path: str, serving_version: str = TF_SERVING_VERSION) -> Report:
  problems = []
  with open(os.path.join(path, 'saved_model.pb'), 'rb') as f:
    saved_model = saved_model_pb2.SavedModel.FromString(f.read())
  ops = graph_ops(saved_model)
  not_core = sorted(op for op in ops if '>' in op or op_def_registry.get(op) is None)
  if not_core:
    problems.append(f'ops that stock TF Serving {serving_version} lacks (not core TensorFlow): '
                    + ', '.join(not_core))
  python_ops = sorted(ops & _PYTHON_OPS)
  if python_ops:
    problems.append('ops that need a Python runtime (tf.py_function / tf.numpy_function): '
                    + ', '.join(python_ops))
  made_by = saved_model.meta_graphs[0].meta_info_def.tensorflow_version
  if _version_tuple(made_by) > _version_tuple(serving_version):
    problems.append(f'saved by TensorFlow {made_by}, newer than TF Serving {serving_version}')
  signatures = []
  for name, sig in sorted(saved_model.meta_graphs[0].signature_def.items()):
    if name.startswith('__'):
      continue
    inputs = ', '.join(f'{k} {tf.dtypes.as_dtype(v.dtype).name}' for k, v in sorted(sig.inputs.items()))
    outputs = ', '.join(sorted(sig.outputs))
    signatures.append(f'{name} ({sig.method_name.rsplit("/", 1)[-1]}): {inputs} -> {outputs}')
  if not problems:
    from serving import model_store  # loads as the server does, then replays the warm-up
    try:
      model_store.Servable('check', 0, path).warm_up()
    except Exception as e:  # any load or warm-up failure is the finding itself
      message = getattr(e, 'message', None) or str(e).splitlines()[0]
      problems.append(f'does not load and warm up: {type(e).__name__}: {message}')
  return Report(path, problems, signatures)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m serving.check', description=__doc__.split('\n')[0])
  parser.add_argument('path', help='a SavedModel, a model folder of versions, or a serving folder')
  parser.add_argument('--tf-serving-version', default=TF_SERVING_VERSION)
  args = parser.parse_args(argv)
  try:
    paths = saved_model_dirs(args.path)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  failed = 0
  for path in paths:
    report = check(path, args.tf_serving_version)
    print(f'{"FAIL" if report.problems else "ok  "} {path}')
    for line in report.signatures:
      print(f'       {line}')
    for problem in report.problems:
      print(f'  problem: {problem}')
    failed += bool(report.problems)
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
