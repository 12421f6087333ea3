"""Installs the pipeline code (components/, pipeline/, serving/) as a package.

`pip install .` installs what the TFX executors and Beam workers import (a Dataflow
`--setup_file` or a worker image needs no more); the extras add the local run's report
(`[report]`), the model server and client (`[serving]`), the Kubeflow runner (`[kubeflow]`)
and the test and lint tools (`[test]`, which includes the others). requirements.in lists them
by section; the exact, tested versions are in requirements.lock (`make venv` installs those
first, then this project without dependencies).
"""

import pathlib
from typing import Dict, List, Tuple

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent


def requirements(path: pathlib.Path = HERE / 'requirements.in') -> Tuple[List[str],
                                                                           Dict[str, List[str]]]:
  """(install_requires, extras_require) of requirements.in's sections (`# [name]` headers)."""
  core, extras, section = [], {}, None
  for line in path.read_text().splitlines():
    line = line.strip()
    if line.startswith('# [') and ']' in line:
      section = line[3:line.index(']')]
      extras[section] = []
    elif line and not line.startswith('#'):
      requirement = line.split('#')[0].strip()
      (core if section is None else extras[section]).append(requirement)
  extras['test'] = sorted({r for name, found in extras.items() for r in found})
  return core, extras


if __name__ == '__main__':
  INSTALL_REQUIRES, EXTRAS_REQUIRE = requirements()
  setup(
      name='movielens-recommender',
      version='0.1.0',
      description='A TFX pipeline that trains, evaluates and serves MovieLens recommenders.',
      python_requires='>=3.10,<3.11',
      packages=find_packages(include=['components', 'components.*', 'pipeline', 'pipeline.*',
                                      'serving', 'serving.*']),
      package_data={'': ['*.pbtxt']},
      install_requires=INSTALL_REQUIRES,
      extras_require=EXTRAS_REQUIRE,
  )
