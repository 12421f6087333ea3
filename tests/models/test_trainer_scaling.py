"""How the Trainer adapts its configured training to the size of the data (components/models/trainer.py)."""

import pytest
import tensorflow as tf

from components.models import trainer
from pipeline import configs
from tests.conftest import transformed_ml100k_sample

CF = configs.default_hparams()['collaborative_filtering']


@pytest.mark.parametrize('examples, scale', [(1_000, 1.0), (80_000, 1.0), (800_000, 0.1),
                                             (8_000_000, 0.01)])
def test_l2_shrinks_with_the_data_above_its_reference(examples, scale):
  assert trainer.l2_scale(CF.replace(l2_examples=80_000), examples) == pytest.approx(scale)
  assert trainer.l2_scale(CF.replace(l2_examples=0), examples) == 1.0  # 0: as configured


@pytest.mark.parametrize('examples, epochs', [(80_000, 9), (800_000, 9), (1_000_000, 8),
                                              (3_000_000, 2), (8_000_000, 1), (20_000_000, 1)])
def test_epochs_stop_at_the_example_budget_but_never_below_one(examples, epochs):
  hparams = CF.replace(epochs=9, example_budget=8_000_000, min_epoch_share=1.0, batch_size=1000)
  assert trainer.training_steps(hparams, examples) == (epochs, examples // 1000)
  assert trainer.training_steps(hparams.replace(example_budget=0), examples) == (
      9, examples // 1000)


@pytest.mark.parametrize('share, examples, steps', [
    (0.25, 8_000_000, 8_000),     # one whole epoch: the budget
    (0.25, 20_000_000, 8_000),    # 0.4 of an epoch: the budget
    (0.25, 40_000_000, 10_000),   # 0.2 of an epoch would be below the share: 0.25
    (0.5, 20_000_000, 10_000),
    (1.0, 20_000_000, 20_000),    # never below a whole epoch
    (0.25, 20_000_001, 8_000),
])
def test_a_share_of_an_epoch_where_one_epoch_is_over_the_budget(share, examples, steps):
  hparams = CF.replace(epochs=8, example_budget=8_000_000, min_epoch_share=share,
                       batch_size=1000)
  assert trainer.training_steps(hparams, examples) == (1, steps)


@pytest.mark.parametrize('epochs, examples, min_share, expected', [
    (8, 80_000, 0.25, (2, 80)),        # 8 epochs: 2
    (9, 80_000, 1.0, (2, 80)),         # 2.25 rounded
    (2, 80_000, 0.25, (1, 40)),        # half an epoch
    (2, 80_000, 1.0, (1, 80)),         # ... but never below min_epoch_share
    (1, 40_000_000, 0.01, (1, 2_000)),  # the budget's 8,000 steps: a quarter of them
    (1, 20_000_000, 0.25, (1, 5_000)),  # ... no less than min_epoch_share of an epoch
])
def test_a_warm_start_trains_its_share_of_the_fit_from_scratch(epochs, examples, min_share,
                                                               expected):
  hparams = CF.replace(epochs=epochs, example_budget=8_000_000, min_epoch_share=min_share,
                       batch_size=1000, warm_start_share=0.25)
  assert trainer.training_steps(hparams, examples, warm_start=True) == expected


def test_user_chunks_apply_from_their_threshold():
  hparams = CF.replace(user_chunk=32, user_chunk_from=2_000_000)
  assert trainer.user_chunk(hparams, 1_999_999) == 0
  assert trainer.user_chunk(hparams, 2_000_000) == 32
  assert trainer.user_chunk(hparams.replace(user_chunk=0, user_chunk_from=0), 10) == 0


def test_defaults_leave_ml_100k_and_the_1m_data_as_tuned():
  """The defaults change nothing at ML-100K's 80,000 training ratings, and only L2 at 1M."""
  for hparams in configs.default_hparams().values():
    for examples in (80_000, 800_000):
      assert trainer.training_steps(hparams, examples) == (
          hparams.epochs, -(-examples // hparams.batch_size))
      assert trainer.user_chunk(hparams, examples) == 0
    assert trainer.l2_scale(hparams, 80_000) == 1.0


def test_collaborative_filtering_trains_two_epochs_at_10m_and_content_based_one():
  hparams = configs.default_hparams()
  assert trainer.training_steps(hparams['collaborative_filtering'], 8_000_000)[0] == 2
  assert trainer.training_steps(hparams['content_based'], 8_000_000) == (1, 15_625)


def test_at_25m_content_based_trains_on_its_budget_and_collaborative_filtering_an_epoch():
  hparams = configs.default_hparams()
  assert trainer.training_steps(hparams['content_based'], 20_000_000) == (1, 15_625)
  assert trainer.training_steps(hparams['collaborative_filtering'], 20_000_000) == (
      1, -(-20_000_000 // 8192))


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


class _Steps(tf.keras.callbacks.Callback):
  """Training steps per epoch, as Keras ran them."""

  def __init__(self):
    super().__init__()
    self.steps = []

  def on_epoch_begin(self, epoch, logs=None):
    self.steps.append(0)

  def on_train_batch_end(self, batch, logs=None):
    self.steps[-1] += 1


@pytest.fixture(scope='module')
def real_examples(tmp_path_factory):
  """3,000 real ML-100K ratings through bench.quality's in-process Transform."""
  _, tft_output, examples = transformed_ml100k_sample(str(tmp_path_factory.mktemp('transform')))
  return tft_output, examples


@pytest.mark.parametrize('chunk', [0, 8])  # random batches, and batches of user chunks
def test_fit_stops_part_way_through_the_epoch_at_its_budget(real_examples, chunk):
  tft_output, examples = real_examples
  hparams = configs.default_hparams()['content_based'].replace(
      epochs=3, batch_size=100, example_budget=1_000, min_epoch_share=0.2,
      user_chunk=chunk, user_chunk_from=0)
  assert trainer.training_steps(hparams, len(examples)) == (1, 10)  # the budget: over 0.2 x 30
  steps = _Steps()
  trainer.fit_model(tft_output, hparams, examples, callbacks=[steps])
  assert steps.steps == [10]
  steps = _Steps()
  trainer.fit_model(tft_output, hparams.replace(example_budget=0, epochs=2), examples,
                    callbacks=[steps])
  assert steps.steps == [30, 30]
