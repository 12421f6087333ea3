"""setup.py: `pip install .` brings what the TFX executors and Beam workers import (the code in
components/), and the extras bring the rest, each what its part imports."""

import ast
import importlib.metadata as metadata
import importlib.util
import os
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import PROJECT_DIR


def _setup_module():
  spec = importlib.util.spec_from_file_location('project_setup',
                                                os.path.join(PROJECT_DIR, 'setup.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)  # defines requirements(); setup() runs only as __main__
  return module


def _imported_top_levels(*folders):
  """Third-party top-level modules imported anywhere under `folders` (or by the files)."""
  found = set()
  for folder in folders:
    path = os.path.join(PROJECT_DIR, folder)
    files = [path] if path.endswith('.py') else [
        os.path.join(root, name) for root, _, names in os.walk(path) for name in names
        if name.endswith('.py')]
    for file in files:
      with open(file, encoding='utf-8') as f:
        tree = ast.parse(f.read(), file)
      for node in ast.walk(tree):
        if isinstance(node, ast.Import):
          found.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
          found.add(node.module.split('.')[0])
  own = {'components', 'pipeline', 'serving', 'bench', 'tests'}
  return {name for name in found - own if name not in sys.stdlib_module_names}


def _installed_with(requirements):
  """Every distribution `requirements` install, with their dependencies (and extras)."""
  seen, stack = set(), [Requirement(r) for r in requirements]
  while stack:
    requirement = stack.pop()
    name = canonicalize_name(requirement.name)
    key = (name, tuple(sorted(requirement.extras)))
    if key in seen:
      continue
    seen.add(key)
    for text in metadata.distribution(name).requires or []:
      dependency = Requirement(text)
      if dependency.marker is None or any(
          dependency.marker.evaluate({'extra': extra}) for extra in requirement.extras | {''}):
        stack.append(dependency)
  return {name for name, _ in seen}


def _top_level_modules():
  """{top-level module: the distributions that install it} (Python 3.10's
  packages_distributions reads only top_level.txt, which numpy and others do not ship)."""
  modules = {}
  for dist in metadata.distributions():
    names = set((dist.read_text('top_level.txt') or '').split())
    if not names:
      names = {str(file).split('/')[0].removesuffix('.py') for file in dist.files or []
               if not str(file).startswith('..') and '.dist-info' not in str(file)}
    for name in names:
      modules.setdefault(name, set()).add(canonicalize_name(dist.metadata['Name']))
  return modules


_MODULES = _top_level_modules()


def _distributions(top_level):
  return _MODULES.get(top_level, set())


def test_the_worker_install_covers_every_import_of_the_executors_code():
  core, _ = _setup_module().requirements()
  installed = _installed_with(core)
  for module in _imported_top_levels('components', 'pipeline/pipeline.py',
                                     'pipeline/configs.py'):
    assert _distributions(module) & installed, f'{module} is not installed by pip install .'


def test_extras_bring_what_their_parts_import_and_nothing_of_theirs_is_core():
  core, extras = _setup_module().requirements()
  installed = _installed_with(core)
  for extra, parts in (('report', ['pipeline/report.py']),
                       ('serving', ['serving']),
                       ('kubeflow', ['kubeflow_runner.py', 'pipeline/kfp_client.py']),
                       ('test', ['tests', 'bench'])):
    with_extra = installed | _installed_with(extras[extra])
    for module in _imported_top_levels(*parts):
      assert _distributions(module) & with_extra, f'{module} ({parts}) is not in [{extra}]'
  names = {canonicalize_name(Requirement(r).name) for r in core}
  assert not names & {'kfp', 'matplotlib', 'tornado', 'requests', 'pytest', 'ruff', 'pyyaml'}
  assert set(extras['test']) >= set(extras['report'] + extras['serving'] + extras['kubeflow'])
