"""Shared test set-up: Keras 2 before TensorFlow loads, the real ML-100K folder, tiny fixtures."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ML_100K_DIR = os.path.join(os.path.dirname(PROJECT_DIR), 'shared', 'datasets', 'ml-100k')
ML_100K_DIR = os.environ.get('MOVIELENS_100K_DIR', ML_100K_DIR)


@pytest.fixture
def ml100k_dir():
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR} '
                '(set MOVIELENS_100K_DIR to point at one)')
  return ML_100K_DIR
