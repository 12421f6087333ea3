"""The seeded random, per-user, cold-user and temporal splits, decided over UserPartitions a
partition at a time: the masks of movielens_splits.eval_mask and evaluated_users_mask (tested
equal), in memory that does not grow with the ratings.

What is global is found without holding the ratings: the random split's threshold key and the
temporal split's threshold time are order statistics, narrowed by histograms over the
partitions; the cold-user draw needs only the distinct users. A rating's decision is kept as one
bit in file order, for the CSV writer.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from components.data import movielens_splits as splits
from components.data import user_partitions

BINS = 1 << 12         # histogram bins a pass narrows an order statistic by
EXACT_ROWS = 1 << 16   # candidates few enough to sort


@dataclasses.dataclass
class DecidedSplits:
  """Which ratings (rows of the file's valid ratings) train and which are evaluated."""
  train: np.ndarray            # bits over rows, little-endian within a byte
  eval: np.ndarray             # the eval split before any user sample: bits over rows
  eval_users: Optional[np.ndarray]  # the eval users evaluated, or None: all of them
  num_users: int
  num_movies_rated: int
  num_ratings: Dict[str, int]  # 'train', 'eval' (after the user sample)
  eval_sample: Optional[Dict]  # what the user sample kept, as ingestion reports it

  def rows(self, which: str, start: int, count: int, users: np.ndarray) -> np.ndarray:
    """The boolean mask of `which` ('train' or 'eval') over rows start..start+count, whose
    users are `users`."""
    mask = bits_between(getattr(self, which), start, count)
    if which == 'eval' and self.eval_users is not None:
      mask &= np.isin(users, self.eval_users)
    return mask


def set_bits(bits: np.ndarray, rows: np.ndarray) -> None:
  np.bitwise_or.at(bits, rows >> 3, (np.uint8(1) << (rows & 7).astype(np.uint8)))


def bits_between(bits: np.ndarray, start: int, count: int) -> np.ndarray:
  unpacked = np.unpackbits(bits[start >> 3:(start + count + 7) >> 3], bitorder='little')
  return unpacked[start & 7:(start & 7) + count].astype(bool)


def decide(parts: user_partitions.UserPartitions, strategy: str, eval_fraction: float,
           seed: int, sample: Optional[int],
           max_eval_ratings: Optional[int]) -> DecidedSplits:
  """The split of the ratings in `parts` (their repeats dropped), of the first `sample` of
  them if given, with the eval users sampled as movielens_splits.evaluated_users_mask does."""
  if max_eval_ratings is not None:
    splits.check_max_eval_ratings(max_eval_ratings)

  def loaded() -> Iterator[np.ndarray]:
    for p in range(parts.count):
      record = parts.load(p)
      if sample is not None:
        record = record[parts.kept_before(record['row']) < sample]
      yield record

  n = parts.num_kept if sample is None else min(sample, parts.num_kept)
  n_eval = splits.eval_count(n, eval_fraction)
  if strategy == splits.RANDOM:  # the n_eval smallest keys (ties: the earlier line)
    threshold = kth_smallest(lambda: ((r['key'], r['line']) for r in loaded()), n_eval)
    is_eval = lambda r: _at_most(r['key'], r['line'], threshold)
  elif strategy == splits.TEMPORAL:  # the n_eval latest (ties: the later line)
    threshold = kth_smallest(lambda: ((-r['timestamp'], -r['line']) for r in loaded()), n_eval)
    is_eval = lambda r: _at_most(-r['timestamp'], -r['line'], threshold)
  elif strategy == splits.COLD_USERS:
    users = np.sort(np.concatenate([np.unique(r['user']) for r in loaded()]))
    cold = splits.cold_users(users, eval_fraction, seed)
    is_eval = lambda r: np.isin(r['user'], cold)
  elif strategy == splits.PER_USER:
    is_eval = lambda r: splits.per_user_eval(r['user'], r['key'], eval_fraction)
  else:
    raise ValueError(f'split {strategy!r} is not decided by partitions')

  train = np.zeros((parts.num_rows + 7) >> 3, np.uint8)
  evaluated = np.zeros_like(train)
  eval_users, eval_counts, movies, num_users = [], [], np.zeros(0, np.int64), 0
  for record in loaded():
    mask = is_eval(record)
    set_bits(train, record['row'][~mask])
    set_bits(evaluated, record['row'][mask])
    users, counts = np.unique(record['user'][mask], return_counts=True)
    eval_users.append(users)
    eval_counts.append(counts)
    movies = np.union1d(movies, record['movie'])
    num_users += len(np.unique(record['user']))
  eval_users, eval_counts = np.concatenate(eval_users), np.concatenate(eval_counts)
  order = np.argsort(eval_users)  # distinct: each user is in one partition
  eval_users, eval_counts = eval_users[order], eval_counts[order]
  total_eval = int(eval_counts.sum())
  decided = DecidedSplits(train, evaluated, None, num_users, len(movies),
                          {'train': n - total_eval, 'eval': total_eval}, None)
  if max_eval_ratings is not None and total_eval > max_eval_ratings:
    kept = splits.sampled_eval_users(eval_users, eval_counts, max_eval_ratings, seed)
    decided.eval_users = kept
    decided.num_ratings['eval'] = int(eval_counts[np.isin(eval_users, kept)].sum())
    decided.eval_sample = splits.eval_sample_summary(max_eval_ratings, total_eval,
                                                     len(eval_users), len(kept))
  return decided


def _at_most(values: np.ndarray, ties: np.ndarray,
             threshold: Optional[Tuple[float, int]]) -> np.ndarray:
  """Where (value, tie) is at most `threshold` (None: nowhere)."""
  if threshold is None:
    return np.zeros(len(values), bool)
  value, tie = threshold
  return (values < value) | ((values == value) & (ties <= tie))


def kth_smallest(columns: Callable[[], Iterator[Tuple[np.ndarray, np.ndarray]]],
                 k: int) -> Optional[Tuple[float, int]]:
  """The k-th smallest (1-based) (value, tie) pair over the (values, ties) arrays `columns()`
  yields, ties distinct; None for k = 0. Each round counts the candidates in BINS bins over
  their range and keeps the bin holding the k-th, until few enough are left to sort."""
  if k < 1:
    return None
  low, high = np.inf, -np.inf
  for values, _ in columns():
    if len(values):
      low, high = min(low, values.min()), max(high, values.max())
  while True:
    if low == high:  # every candidate has the same value: the k-th of their ties
      tie = kth_smallest(lambda: ((t[v == low], t[v == low]) for v, t in columns()), k)
      return low, tie[1]
    bin_of = lambda v, lo=low, hi=high: np.minimum(
        ((v - lo) / (hi - lo) * BINS).astype(np.int64), BINS - 1)
    counts = np.zeros(BINS, np.int64)
    for values, _ in columns():
      inside = values[(values >= low) & (values <= high)]
      counts += np.bincount(bin_of(inside), minlength=BINS)
    below = np.cumsum(counts)
    chosen = int(np.searchsorted(below, k))  # the first bin whose cumulative count reaches k
    k -= int(below[chosen - 1]) if chosen else 0
    pick = lambda v, lo=low, hi=high, j=chosen, bins=bin_of: (
        (v >= lo) & (v <= hi) & (bins(v) == j))
    if counts[chosen] <= EXACT_ROWS:
      pairs = [(v[pick(v)], t[pick(v)]) for v, t in columns()]
      values, ties = (np.concatenate(c) for c in zip(*pairs))
      order = np.lexsort((ties, values))
      return values[order[k - 1]], int(ties[order[k - 1]])
    low, high = np.inf, -np.inf  # the chosen bin's range: exactly its candidates
    for values, _ in columns():
      inside = values[pick(values)]
      if len(inside):
        low, high = min(low, inside.min()), max(high, inside.max())
