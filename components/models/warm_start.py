"""Warm start: a new model's weights from the served model, across changed vocabularies.

A scheduled run (docs/timeline.md) trains on a window that grew by one span since the served
model was trained. With the Trainer's `base_model` (the latest blessed model), `run_fn` starts
from that model's weights and shows it `warm_start_share` of the examples a fit from scratch
would (trainer.training_steps).

Transform's vocabularies are ordered by frequency and grow with new users and movies, so a row
of a table keyed by a vocabulary (a model's `vocabulary_tables`) is moved to its token's new
row: tokens new to this run keep their fresh initial rows, every other weight is copied as it
is. The base model is read the way TF Serving reads it: its SavedModel's variables (by their
object-graph paths, which are the Keras model's attribute paths) and its vocabulary assets.

A warm start must not carry what the run is judged on into training: the base model's training
ratings (its stored history) must all be among this run's training ratings. A base model
trained on another split, a later span or a dropped window span fails that, and the run trains
from scratch (and says why), as it does when the base model's shapes do not fit, or when it
was trained on exactly this run's ratings (no new span: a warm start would only train the same
model on, each time the schedule runs without new data).
"""

import collections
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components.data import features as f

VALUE = '/.ATTRIBUTES/VARIABLE_VALUE'


class Unsuitable(Exception):
  """The base model cannot seed this model (the reason is the message)."""


def variable_paths(root: tf.Module) -> Dict[str, tf.Variable]:
  """Each variable under `root` by its object-graph path ('movie_tower/layer_with_weights-0/
  kernel'): the names a SavedModel's checkpoint stores it under (shortest path, breadth first,
  as TensorFlow's checkpointer names them)."""
  paths, seen = {}, {id(root)}
  queue = collections.deque([(root, '')])
  while queue:
    node, path = queue.popleft()
    for name, child in tf.train.TrackableView(node).children(node).items():
      if id(child) in seen:
        continue
      seen.add(id(child))
      child_path = f'{path}/{name}' if path else name
      if isinstance(child, tf.Variable):
        paths[child_path] = child
      else:
        queue.append((child, child_path))
  return paths


def read_vocabulary(path: str) -> List[bytes]:
  with tf.io.gfile.GFile(path, 'rb') as file:
    return [line.rstrip(b'\n') for line in file]


def moved_rows(old_tokens: Sequence[bytes], new_tokens: Sequence[bytes], first: int,
               old_rows: int, new_rows: int) -> Tuple[np.ndarray, np.ndarray]:
  """(new rows, old rows): where each row of a table over `old_tokens` goes in a table over
  `new_tokens`. Rows before `first` (padding) keep their place, and the rows after the tokens
  (the OOV bucket) theirs counted from the table's end."""
  old_index = {token: i for i, token in enumerate(old_tokens)}
  pairs = [(first + i, first + old_index[token]) for i, token in enumerate(new_tokens)
           if token in old_index]
  pairs += [(i, i) for i in range(first)]
  tail = old_rows - first - len(old_tokens)
  if tail < 0 or new_rows - first - len(new_tokens) != tail:
    raise Unsuitable(f'a table of {old_rows} rows over {len(old_tokens)} tokens cannot be '
                     f'moved to {new_rows} rows over {len(new_tokens)}')
  pairs += [(new_rows - k, old_rows - k) for k in range(1, tail + 1)]
  new, old = (np.asarray(column, np.int64) for column in zip(*pairs)) if pairs else (
      np.zeros(0, np.int64), np.zeros(0, np.int64))
  return new, old


def _pair_keys(users: np.ndarray, movies: np.ndarray, num_movies: int) -> np.ndarray:
  """One int64 key per (user index, movie index) pair, over `num_movies` movie tokens."""
  return (np.asarray(users, np.int64) * (num_movies + f.OOV_BUCKETS)
          + np.asarray(movies, np.int64))


def _history_pairs(reader, vocabularies: Dict[str, List[bytes]], users: Dict[bytes, int],
                   movies: Dict[bytes, int]) -> Optional[np.ndarray]:
  """The base model's training (user, movie) pairs in this run's indices, as _pair_keys;
  None where one of its users or movies is not in this run's
  vocabularies (so not among its training ratings)."""
  splits = reader.get_tensor('history_splits' + VALUE)
  history_movies = reader.get_tensor('history_movies' + VALUE)
  old_users, old_movies = vocabularies[f.USER_VOCAB], vocabularies[f.MOVIE_VOCAB]
  user_of_row = np.repeat(np.arange(len(splits) - 1), np.diff(splits))
  to_new_user = np.array([users.get(t, -1) for t in old_users] + [-1], np.int64)
  to_new_movie = np.array([movies.get(t, -1) for t in old_movies] + [-1], np.int64)
  new_users = to_new_user[np.minimum(user_of_row, len(old_users))]
  new_movies = to_new_movie[np.minimum(history_movies, len(old_movies))]
  if (new_users < 0).any() or (new_movies < 0).any():
    return None
  return _pair_keys(new_users, new_movies, len(movies))


def warm_start(model: tf.keras.Model, base_model_dir: str,
               vocabulary: callable, trained_pairs: Tuple[np.ndarray, np.ndarray]) -> Dict:
  """Sets `model`'s trainable weights (built) from the SavedModel in `base_model_dir`.

  `vocabulary(name)`: this run's tokens of Transform's vocabulary `name`; `trained_pairs`:
  (user indices, movie indices) of this run's training ratings. Returns what was done, for the
  training stats: {'from': dir, 'tables': moved tables, 'copied': other weights}. Raises
  Unsuitable (nothing assigned) where the base model does not fit or saw other ratings."""
  reader = tf.train.load_checkpoint(os.path.join(base_model_dir, 'variables', 'variables'))
  stored = reader.get_variable_to_shape_map()
  variables = variable_paths(model)
  present = {path.rsplit('/', 1)[0] for path in variables}  # (no demographics: no such tables)
  tables = {prefix: table for prefix, table in model.vocabulary_tables.items()
            if prefix in present}
  names = sorted({vocab for vocab, _ in tables.values()} | {f.USER_VOCAB, f.MOVIE_VOCAB})
  old_vocab, new_vocab = {}, {}
  for name in names:
    asset = os.path.join(base_model_dir, 'assets', name)
    if not tf.io.gfile.exists(asset):
      raise Unsuitable(f'the base model has no vocabulary {name!r} ({asset})')
    old_vocab[name], new_vocab[name] = read_vocabulary(asset), list(vocabulary(name))

  users = {t: i for i, t in enumerate(new_vocab[f.USER_VOCAB])}
  movies = {t: i for i, t in enumerate(new_vocab[f.MOVIE_VOCAB])}
  if 'history_splits' + VALUE not in stored:
    raise Unsuitable('the base model stores no training history to check it against')
  base_pairs = _history_pairs(reader, old_vocab, users, movies)
  ours = _pair_keys(*trained_pairs, len(movies))
  if base_pairs is None or not np.isin(base_pairs, ours).all():
    raise Unsuitable("the base model was trained on ratings that are not among this run's "
                     'training ratings (another split, a later span or a dropped one)')
  if len(base_pairs) == len(ours):  # (pairs are distinct: ingestion drops repeats)
    raise Unsuitable('the base model was trained on these very ratings (no new span): '
                     'starting from it would only train it on')

  values = {}  # everything is checked before anything is assigned
  for path, variable in variables.items():
    if not variable.trainable:
      continue  # histories, content tables, serving tables: this run's data sets them
    if path + VALUE not in stored:
      raise Unsuitable(f'the base model has no weight {path}')
    old = reader.get_tensor(path + VALUE)
    new_shape = tuple(variable.shape)
    table = tables.get(path.rsplit('/', 1)[0])
    if table:
      vocab, first = table
      if old.shape[1:] != new_shape[1:]:
        raise Unsuitable(f'{path}: the base model has rows of {old.shape[1:]}, this one '
                         f'{new_shape[1:]}')
      new_rows, old_rows = moved_rows(old_vocab[vocab], new_vocab[vocab], first, len(old),
                                      new_shape[0])
      value = variable.numpy()
      value[new_rows] = old[old_rows]
      values[path] = value
    elif old.shape != new_shape:
      raise Unsuitable(f'{path}: the base model has {old.shape}, this one {new_shape}')
    else:
      values[path] = old
  for path, value in values.items():
    variables[path].assign(value)
  moved = sorted(path for path in values if path.rsplit('/', 1)[0] in tables)
  return {'from': base_model_dir, 'tables': moved,
          'copied': sorted(set(values) - set(moved)),
          'base_ratings': int(len(base_pairs))}
