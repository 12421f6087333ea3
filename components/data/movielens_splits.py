"""Train/eval split strategies: seeded random, per-user, cold-user, temporal, and ML-100K's
published folds.

- random: a seeded share of all ratings (those of the smallest seeded keys, LineKeys).
- per_user: a seeded share of each user's ratings (Microsoft Recommenders' stratified split,
  the protocol of their top-K tables).
- cold_users: a seeded share of the users, with all their ratings (users never seen in
  training: the cold-start protocol).
- temporal: the latest ratings.

Quality claims on MovieLens are only comparable under the published protocols, so the
canonical folds (u1..u5 five-fold, ua/ub with ten ratings per user held out) are read from
the dataset's own files rather than re-drawn.
"""

from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from components.data import movielens_formats as formats

RANDOM, PER_USER, COLD_USERS, TEMPORAL = 'random', 'per_user', 'cold_users', 'temporal'
CANONICAL_FOLDS = ('u1', 'u2', 'u3', 'u4', 'u5', 'ua', 'ub')
STRATEGIES = (RANDOM, PER_USER, COLD_USERS, TEMPORAL) + tuple(
    f'canonical:{fold}' for fold in CANONICAL_FOLDS)


def validate_strategy(strategy: str, dataset: str) -> None:
  if strategy not in STRATEGIES:
    raise ValueError(f'unknown split {strategy!r}; expected one of {", ".join(STRATEGIES)}')
  if strategy.startswith('canonical:') and dataset != formats.ML_100K:
    raise ValueError(f'split {strategy!r} uses the published ML-100K fold files; '
                     f'dataset {dataset} has none (use random or temporal)')


class LineKeys:
  """Each rating's random key: the value of the seed's stream (NumPy's default generator)
  at its line's place among the file's rating lines. A key depends on the line alone, not on
  the rows skipped before it, and is drawn in file order, a chunk at a time, so a streaming
  reader and an in-memory one give every rating the same key."""

  def __init__(self, seed: int, first_line: int):
    self._rng = np.random.default_rng(seed)
    self._next_line = first_line

  def of(self, lines: np.ndarray) -> np.ndarray:
    """The keys of `lines`: increasing, and after every line asked for before."""
    if not len(lines):
      return np.zeros(0)
    if lines[0] < self._next_line or (np.diff(lines) <= 0).any():
      raise ValueError('ratings out of file order: their keys are drawn line by line')
    draws = self._rng.random(int(lines[-1]) - self._next_line + 1)
    keys = draws[lines - self._next_line]
    self._next_line = int(lines[-1]) + 1
    return keys


def check_eval_fraction(eval_fraction: float) -> None:
  if not 0.0 < eval_fraction < 1.0:
    raise ValueError(f'eval fraction must be between 0 and 1, got {eval_fraction}')


def eval_count(n: int, eval_fraction: float) -> int:
  """How many of `n` ratings a seeded random or temporal split evaluates: the fraction
  rounded, and both splits non-empty."""
  check_eval_fraction(eval_fraction)
  n_eval = int(round(n * eval_fraction))
  return min(max(n_eval, 1), n - 1) if n >= 2 else n_eval


def cold_user_count(num_users: int, eval_fraction: float) -> int:
  return min(max(int(round(num_users * eval_fraction)), 1), max(num_users - 1, 1))


def cold_users(users: np.ndarray, eval_fraction: float, seed: int) -> np.ndarray:
  """A seeded random share of `users` (sorted, distinct): the users the cold-user split
  evaluates."""
  return np.random.default_rng(seed).permutation(users)[:cold_user_count(len(users),
                                                                         eval_fraction)]


def eval_mask(data: formats.MovieLensData, ratings: formats.Ratings, strategy: str,
              eval_fraction: float = 0.2, seed: int = 42) -> np.ndarray:
  """A boolean array over `ratings` (in file order): True where the rating goes to the eval
  split. Ingestion decides the same splits file by file (components/data/partitioned_splits.py,
  tested equal); this is their definition, and the canonical folds' reader."""
  validate_strategy(strategy, data.dataset)
  n = len(ratings)
  if strategy.startswith('canonical:'):
    return _canonical_mask(data, ratings, strategy.split(':', 1)[1])
  n_eval = eval_count(n, eval_fraction)
  keys = LineKeys(seed, formats.first_rating_line(data.dataset)).of(ratings.line)
  if strategy == PER_USER:
    return per_user_eval(ratings.user_id, keys, eval_fraction)
  if strategy == COLD_USERS:
    return np.isin(ratings.user_id, cold_users(np.unique(ratings.user_id), eval_fraction, seed))
  mask = np.zeros(n, dtype=bool)
  if strategy == RANDOM:  # the ratings of the smallest keys
    order = np.lexsort((ratings.line, keys))
  else:  # TEMPORAL: the latest ratings are evaluated; of equal times, the later lines
    order = np.lexsort((-ratings.line, -ratings.timestamp))
  mask[order[:n_eval]] = True
  return mask


def per_user_eval(users: np.ndarray, keys: np.ndarray, eval_fraction: float) -> np.ndarray:
  """Per user, the round((1 - eval_fraction) * n) of their n ratings with the smallest keys
  train; the rest are evaluated (True)."""
  n = len(users)
  order = np.lexsort((keys, users))  # by user, shuffled within
  _, starts, counts = np.unique(users[order], return_index=True, return_counts=True)
  rank = np.arange(n) - np.repeat(starts, counts)
  n_train = np.floor(counts * (1.0 - eval_fraction) + 0.5).astype(np.int64)
  mask = np.zeros(n, dtype=bool)
  mask[order] = rank >= np.repeat(n_train, counts)
  return mask


def _read_fold_keys(path: str, key_of) -> Tuple[np.ndarray, np.ndarray]:
  """Reads a fold file (the u.data format); returns its (user, movie) keys and line numbers."""
  keys, lines = [], []
  for number, text in formats.read_lines(path, 'latin-1'):
    f = formats.split_fields(path, number, text, '\t', 4)
    user_id = formats.parse_int(path, number, 'user id', f[0])
    movie_id = formats.parse_int(path, number, 'movie id', f[1])
    keys.append(key_of(user_id, movie_id))
    lines.append(number)
  return np.asarray(keys, np.int64), np.asarray(lines, np.int64)


def _canonical_mask(data: formats.MovieLensData, ratings: formats.Ratings,
                    fold: str) -> np.ndarray:
  all_ratings = data.ratings
  width = int(max(all_ratings.movie_id.max(initial=0), 0)) + 1
  key_of = lambda user, movie: int(user) * width + int(movie) if 0 <= movie < width else -1
  known = set((all_ratings.user_id * width + all_ratings.movie_id).tolist())
  test_keys = set()
  for suffix in ('base', 'test'):
    path = os.path.join(data.data_dir, f'{fold}.{suffix}')
    if not os.path.isfile(path):
      raise formats.IngestionError(path, f'missing file: split canonical:{fold} needs '
                                   f'{fold}.base and {fold}.test')
    keys, lines = _read_fold_keys(path, key_of)
    unknown = [i for i, k in enumerate(keys.tolist()) if k not in known]
    if unknown:
      raise formats.IngestionError(path, 'rating not found in u.data', int(lines[unknown[0]]))
    if suffix == 'test':
      test_keys = set(keys.tolist())
  return np.fromiter(((u * width + m) in test_keys
                      for u, m in zip(ratings.user_id.tolist(), ratings.movie_id.tolist())),
                     dtype=bool, count=len(ratings))


def evaluated_users_mask(users: np.ndarray, is_eval: np.ndarray, max_ratings: int,
                         seed: int) -> np.ndarray:
  """`is_eval` narrowed to every eval rating of a seeded random subset of the eval users, as
  many users (in a seeded random order) as fit in `max_ratings`; unchanged when the eval ratings
  already fit.

  For data too big to evaluate whole in reasonable time (TFMA's per-example work dominates the
  Evaluators at millions of ratings). Whole users, not single ratings, are sampled: each sampled
  user's NDCG is computed over all their eval ratings, as without sampling, and RMSE stays an
  unbiased estimate."""
  check_max_eval_ratings(max_ratings)
  if int(is_eval.sum()) <= max_ratings:
    return is_eval
  eval_users, counts = np.unique(users[is_eval], return_counts=True)
  return is_eval & np.isin(users, sampled_eval_users(eval_users, counts, max_ratings, seed))


def check_max_eval_ratings(max_ratings: int) -> None:
  if max_ratings < 1:
    raise ValueError(f'--max-eval-ratings must be positive (0 evaluates all), got {max_ratings}')


def eval_sample_summary(max_eval_ratings: int, eval_ratings: int, eval_users: int,
                        users: int) -> Dict[str, int]:
  """What the eval-user sample kept, as dataset.json and the run summary report it."""
  return {'max_eval_ratings': max_eval_ratings, 'eval_ratings': eval_ratings,
          'eval_users': eval_users, 'users': users}


def sampled_eval_users(eval_users: np.ndarray, counts: np.ndarray, max_ratings: int,
                       seed: int) -> np.ndarray:
  """Of the eval users (sorted, distinct) with `counts` eval ratings each, as many as fit in
  `max_ratings`, in a seeded random order."""
  order = np.random.default_rng([seed, 2]).permutation(len(eval_users))
  return eval_users[order[np.cumsum(counts[order]) <= max_ratings]]
