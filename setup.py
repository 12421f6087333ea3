"""Installs the pipeline code (components/, pipeline/, serving/) as a package.

Beam workers and the Kubeflow image install the project through this file; the exact,
tested dependency versions are in requirements.lock (`make venv` installs those first).
"""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
REQUIREMENTS = [
    line.strip() for line in (HERE / 'requirements.in').read_text().splitlines()
    if line.strip() and not line.startswith(('#', 'pytest', 'ruff'))  # tools, not runtime
]

setup(
    name='movielens-recommender',
    version='0.1.0',
    description='A TFX pipeline that trains, evaluates and serves MovieLens recommenders.',
    python_requires='>=3.10,<3.11',
    packages=find_packages(include=['components', 'components.*', 'pipeline', 'pipeline.*',
                                    'serving', 'serving.*']),
    package_data={'': ['*.pbtxt']},
    install_requires=REQUIREMENTS,
)
