"""The two models' hyperparameters as typed, frozen records, checked once where they are made.

Which settings a model has, of which type and within which bounds is said here; the values are
chosen in pipeline/configs.py (docs/tuning.md has the evidence). A misspelt `--set` name, a
value of the wrong type or out of bounds fails when the pipeline is built, naming the setting
and the allowed ones, not inside a Trainer. They reach the Trainer as a plain dict in its
`custom_config` (`to_config` / `from_config`), which TFX records in ML Metadata.
"""

import dataclasses
import math
from typing import Dict, Iterable, Type

from components.models import model_names as names

DECAYS = ('constant', 'cosine')
_KINDS = {int: 'an int', float: 'a float', str: 'a str'}  # for messages


def _at_least(bound, doc: str):
  """A required field whose value must be >= `bound` (`doc` says what it does)."""
  return dataclasses.field(metadata={'min': bound, 'doc': doc})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Training:
  """What both models' training reads (components/models/trainer.py). 0 turns off a setting
  that says so."""
  embedding_dim: int = _at_least(1, 'width of the rating embeddings')
  l2: float = _at_least(0.0, 'L2 weight on the embedding tables (at l2_examples examples)')
  learning_rate: float = _at_least(0.0, "Adam's initial learning rate")
  learning_rate_decay: str = dataclasses.field(
      metadata={'choices': DECAYS, 'doc': 'constant, or cosine decay to 0 over the fit'})
  learning_rate_steps: int = _at_least(
      0, 'fits longer than this many steps start from rate x sqrt(steps / this); 0: off')
  batch_size: int = _at_least(1, 'examples per training step')
  epochs: int = _at_least(1, 'passes over the training examples (see example_budget)')
  warm_start_share: float = dataclasses.field(metadata={
      'min': 0.0, 'max': 1.0,
      'doc': 'a fit that starts from the served model (--warm-start) shows this share of the '
             'examples a fit from scratch would (whole epochs, or a part of one)'})
  seed: int = _at_least(0, 'seeds weights, shuffling and TF ops: training is repeatable')
  retrieval_weight: float = _at_least(0.0, "weight of the ranking (softmax) loss; 0: off")
  user_chunk: int = _at_least(0, "examples per user chunk of a batch; 0: random batches")
  user_chunk_from: int = _at_least(0, 'training examples from which user chunks apply')
  l2_examples: int = _at_least(0, 'examples l2 is tuned at; more shrink it in proportion')
  example_budget: int = _at_least(0, 'at most this many examples over all epochs; 0: off')
  min_epoch_share: float = dataclasses.field(metadata={
      'min': 0.0, 'max': 1.0,
      'doc': 'where one epoch is over example_budget, training may stop after this share '
             'of it (1.0: always a whole epoch)'})

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if field.type is float and type(value) is int:  # 1 for 1.0 (JSON, hand-written)
        object.__setattr__(self, field.name, value := float(value))
      if type(value) is not field.type or (field.type is float and not math.isfinite(value)):
        raise ValueError(f'{self.model_name}.{field.name} takes {_KINDS[field.type]}, got '
                         f'{value!r}')
      if 'min' in field.metadata and value < field.metadata['min']:
        raise ValueError(f'{self.model_name}.{field.name} must be at least '
                         f'{field.metadata["min"]}, got {value!r}')
      if 'max' in field.metadata and value > field.metadata['max']:
        raise ValueError(f'{self.model_name}.{field.name} must be at most '
                         f'{field.metadata["max"]}, got {value!r}')
      if 'choices' in field.metadata and value not in field.metadata['choices']:
        raise ValueError(f'{self.model_name}.{field.name} must be one of '
                         f'{list(field.metadata["choices"])}, got {value!r}')

  model_name = 'model'

  @classmethod
  def names(cls) -> Iterable[str]:
    return sorted(field.name for field in dataclasses.fields(cls))

  def to_config(self) -> Dict:
    """The JSON-ready dict the Trainer's custom_config carries."""
    return dataclasses.asdict(self)

  def replace(self, **changes) -> 'Training':
    """A copy with `changes` (checked like the original)."""
    return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ContentBased(Training):
  """components/models/content_based.py's settings beyond training's."""
  model_name = names.CONTENT_BASED
  profile_shrinkage: float = _at_least(0.0, "ratings' weight against the mean in a profile")
  training_profile_cap: int = _at_least(
      0, "a training profile is drawn from at most this many ratings; 0: all")
  exact_ranking_movies: int = _at_least(
      0, 'catalogues up to this size get the exact softmax; larger ones a sampled one')
  movie_id_dropout: float = _at_least(0.0, 'share of training rows that hide the movie id')
  min_title_token_movies: int = _at_least(0, 'title tokens of fewer movies are not learnt')


@dataclasses.dataclass(frozen=True, kw_only=True)
class CollaborativeFiltering(Training):
  """components/models/collaborative_filtering.py's settings beyond training's."""
  model_name = names.COLLABORATIVE_FILTERING
  retrieval_dim: int = _at_least(1, 'width of the ranking (retrieval) embeddings')
  retrieval_l2: float = _at_least(0.0, 'L2 weight on the retrieval tables')
  ranking_negatives: int = _at_least(
      0, 'sampled softmax negatives; catalogues no bigger get the exact softmax')
  training_history_cap: int = _at_least(
      0, "N(u)'s sum is estimated from at most this many ratings in training; 0: all")
  new_user_prior: float = _at_least(
      0.0, "a new user's fold-in: weight of the pull towards the mean trained user")
  new_user_bias_prior: float = _at_least(
      0.0, "a new user's fold-in: that weight on their rating bias b_u alone")


BY_MODEL: Dict[str, Type[Training]] = {
    names.CONTENT_BASED: ContentBased, names.COLLABORATIVE_FILTERING: CollaborativeFiltering}


def _model_class(model_name: str) -> Type[Training]:
  if model_name not in BY_MODEL:
    raise ValueError(f'unknown model {model_name!r}; expected one of {sorted(BY_MODEL)}')
  return BY_MODEL[model_name]


def from_config(model_name: str, config: Dict) -> Training:
  """`to_config`'s inverse; an unknown or missing name is an error naming the allowed ones."""
  cls = _model_class(model_name)
  unknown, missing = set(config) - set(cls.names()), set(cls.names()) - set(config)
  if unknown or missing:
    raise ValueError(f'{model_name}: ' + '; '.join(
        f'{what} {", ".join(sorted(found))}' for what, found in
        (('unknown hyperparameter', unknown), ('missing hyperparameter', missing)) if found)
        + f' (its hyperparameters: {", ".join(cls.names())})')
  return cls(**config)


def _parse(cls: Type[Training], name: str, text: str):
  """A `--set` value as the field's type."""
  kind = {field.name: field.type for field in dataclasses.fields(cls)}[name]
  try:
    return kind(text)
  except ValueError:
    raise ValueError(f'{cls.model_name}.{name} takes {_KINDS[kind]}, got {text!r}') from None


def override(hparams: Dict[str, Training], settings: Iterable[str]) -> Dict[str, Training]:
  """`hparams` with `MODEL.NAME=VALUE` settings applied (each value parsed as NAME's type)."""
  hparams = dict(hparams)
  for setting in settings:
    key, equals, text = setting.partition('=')
    model, dot, name = key.partition('.')
    if not (equals and dot and text):
      raise ValueError(f'--set {setting!r}: expected MODEL.NAME=VALUE, e.g. '
                       f'{names.COLLABORATIVE_FILTERING}.learning_rate=0.01')
    if model not in hparams:
      raise ValueError(f'--set {setting!r}: unknown model {model!r}; expected one of '
                       f'{sorted(hparams)}')
    cls = type(hparams[model])
    if name not in cls.names():
      raise ValueError(f'--set {setting!r}: {model} has no hyperparameter {name!r}; its '
                       f'hyperparameters: {", ".join(cls.names())}')
    try:
      hparams[model] = hparams[model].replace(**{name: _parse(cls, name, text)})
    except ValueError as e:
      raise ValueError(f'--set {setting!r}: {e}') from None
  return hparams
