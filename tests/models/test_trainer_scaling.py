"""How the Trainer adapts its configured training to the size of the data (components/models/trainer.py)."""

import pytest

from components.models import trainer
from pipeline import configs

CF = configs.default_hparams()['collaborative_filtering']


@pytest.mark.parametrize('examples, scale', [(1_000, 1.0), (80_000, 1.0), (800_000, 0.1),
                                             (8_000_000, 0.01)])
def test_l2_shrinks_with_the_data_above_its_reference(examples, scale):
  assert trainer.l2_scale(CF.replace(l2_examples=80_000), examples) == pytest.approx(scale)
  assert trainer.l2_scale(CF.replace(l2_examples=0), examples) == 1.0  # 0: as configured


@pytest.mark.parametrize('examples, epochs', [(80_000, 9), (800_000, 9), (1_000_000, 8),
                                              (3_000_000, 2), (8_000_000, 1), (20_000_000, 1)])
def test_epochs_stop_at_the_example_budget_but_never_below_one(examples, epochs):
  hparams = CF.replace(epochs=9, example_budget=8_000_000)
  assert trainer.training_epochs(hparams, examples) == epochs
  assert trainer.training_epochs(hparams.replace(example_budget=0), examples) == 9


def test_user_chunks_apply_from_their_threshold():
  hparams = CF.replace(user_chunk=32, user_chunk_from=2_000_000)
  assert trainer.user_chunk(hparams, 1_999_999) == 0
  assert trainer.user_chunk(hparams, 2_000_000) == 32
  assert trainer.user_chunk(hparams.replace(user_chunk=0, user_chunk_from=0), 10) == 0


def test_defaults_leave_ml_100k_and_the_1m_data_as_tuned():
  """The defaults change nothing at ML-100K's 80,000 training ratings, and only L2 at 1M."""
  for hparams in configs.default_hparams().values():
    for examples in (80_000, 800_000):
      assert trainer.training_epochs(hparams, examples) == hparams.epochs
      assert trainer.user_chunk(hparams, examples) == 0
    assert trainer.l2_scale(hparams, 80_000) == 1.0


def test_collaborative_filtering_trains_two_epochs_at_10m_and_content_based_one():
  hparams = configs.default_hparams()
  assert trainer.training_epochs(hparams['collaborative_filtering'], 8_000_000) == 2
  assert trainer.training_epochs(hparams['content_based'], 8_000_000) == 1


def test_learning_rate_is_constant_or_a_cosine_decay_to_zero_over_the_fit():
  hparams = CF.replace(learning_rate=0.01, learning_rate_steps=0)
  assert trainer.learning_rate(hparams.replace(learning_rate_decay='constant'), 100) == 0.01
  schedule = trainer.learning_rate(hparams.replace(learning_rate_decay='cosine'), 100)
  assert [round(float(schedule(step)), 6) for step in (0, 50, 100, 150)] == [
      0.01, 0.005, 0.0, 0.0]
  with pytest.raises(ValueError, match=r"collaborative_filtering.learning_rate_decay must be "
                                       r"one of \['constant', 'cosine'\], got 'linear'"):
    hparams.replace(learning_rate_decay='linear')


def test_learning_rate_shrinks_with_the_square_root_of_steps_beyond_learning_rate_steps():
  hparams = CF.replace(learning_rate=0.03, learning_rate_steps=500,
                       learning_rate_decay='constant')
  assert trainer.learning_rate(hparams, 81) == 0.03  # a short fit keeps the configured rate
  assert trainer.learning_rate(hparams, 500) == 0.03
  assert trainer.learning_rate(hparams, 2000) == pytest.approx(0.015)  # 4x the steps: half
  schedule = trainer.learning_rate(hparams.replace(learning_rate_decay='cosine'), 2000)
  assert [round(float(schedule(step)), 6) for step in (0, 1000, 2000)] == [0.015, 0.0075, 0.0]
  assert trainer.learning_rate(hparams.replace(learning_rate_steps=0), 2000) == 0.03
