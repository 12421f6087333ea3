"""Typed hyperparameters (components/models/hyperparameters.py): `--set` parses to the field's
type, bad names and values fail once with the allowed ones named, and the Trainer's
custom_config round-trips."""

import dataclasses
import json

import pytest

from components.models import hyperparameters
from pipeline import configs

CB, CF = 'content_based', 'collaborative_filtering'


def test_overrides_are_parsed_as_each_setting_s_type_and_leave_the_defaults_alone():
  defaults = configs.default_hparams()
  hparams = hyperparameters.override(defaults, [
      f'{CF}.learning_rate=0.01', f'{CB}.epochs=2', f'{CF}.learning_rate_decay=constant',
      f'{CB}.l2=0'])
  assert hparams[CF].learning_rate == 0.01 and hparams[CF].learning_rate_decay == 'constant'
  assert hparams[CB].epochs == 2 and type(hparams[CB].epochs) is int
  assert hparams[CB].l2 == 0.0 and type(hparams[CB].l2) is float
  assert defaults == configs.default_hparams()  # frozen: the defaults did not change
  with pytest.raises(dataclasses.FrozenInstanceError):
    defaults[CB].epochs = 3


@pytest.mark.parametrize('setting, message', [
    ('content_based.no_such=1', "--set 'content_based.no_such=1': content_based has no "
                                "hyperparameter 'no_such'; its hyperparameters: batch_size, "),
    ('content_based.ranking_negatives=8', "content_based has no hyperparameter "
                                          "'ranking_negatives'"),
    ('matrix.epochs=1', "unknown model 'matrix'; expected one of ['collaborative_filtering', "
                        "'content_based']"),
    ('content_based.epochs', 'expected MODEL.NAME=VALUE'),
    ('epochs=3', 'expected MODEL.NAME=VALUE'),
    ('content_based.epochs=2.5', "content_based.epochs takes an int, got '2.5'"),
    ('content_based.l2=small', "content_based.l2 takes a float, got 'small'"),
    ('content_based.l2=nan', 'content_based.l2 takes a float, got nan'),
    ('collaborative_filtering.batch_size=0', 'batch_size must be at least 1, got 0'),
    ('collaborative_filtering.l2=-1e-4', 'l2 must be at least 0.0, got -0.0001'),
    ('content_based.min_epoch_share=1.5', 'min_epoch_share must be at most 1.0, got 1.5'),
    ('collaborative_filtering.learning_rate_decay=linear',
     "learning_rate_decay must be one of ['constant', 'cosine'], got 'linear'"),
])
def test_a_bad_override_names_the_setting_and_what_is_allowed(setting, message):
  with pytest.raises(ValueError) as raised:
    hyperparameters.override(configs.default_hparams(), [setting])
  assert message in str(raised.value)


def test_the_trainer_config_round_trips_through_json_and_rejects_unknown_or_missing_names():
  for name, hparams in configs.default_hparams().items():
    config = json.loads(json.dumps(hparams.to_config()))  # what TFX's custom_config carries
    assert hyperparameters.from_config(name, config) == hparams
    assert type(hyperparameters.from_config(name, config)) is hyperparameters.BY_MODEL[name]
  config = configs.default_hparams()[CF].to_config()
  with pytest.raises(ValueError, match="collaborative_filtering: unknown hyperparameter lr; "
                                       "missing hyperparameter learning_rate"):
    hyperparameters.from_config(CF, dict({k: v for k, v in config.items()
                                          if k != 'learning_rate'}, lr=0.1))
  with pytest.raises(ValueError, match="collaborative_filtering.epochs takes an int, got True"):
    hyperparameters.from_config(CF, dict(config, epochs=True))
  with pytest.raises(ValueError, match="unknown model 'svd'"):
    hyperparameters.from_config('svd', config)


def test_each_model_has_its_own_settings_and_every_setting_is_documented():
  cb, cf = (set(hyperparameters.BY_MODEL[name].names()) for name in (CB, CF))
  assert {'profile_shrinkage', 'movie_id_dropout'} <= cb - cf
  assert {'retrieval_dim', 'ranking_negatives'} <= cf - cb
  for cls in hyperparameters.BY_MODEL.values():
    assert all(field.metadata.get('doc') for field in dataclasses.fields(cls))


def test_epochs_flag_sets_both_models_and_keeps_the_rest():
  settings = configs.PipelineSettings()
  settings.set_epochs(3)
  assert {hparams.epochs for hparams in settings.hparams.values()} == {3}
  assert settings.hparams[CF].replace(epochs=9) == configs.default_hparams()[CF]
  with pytest.raises(ValueError, match='--epochs must be at least 1, got 0'):
    settings.set_epochs(0)
