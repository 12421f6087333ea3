"""Ratings partitioned by user in files on disk, so that ingestion holds one partition at a time.

Held whole, the ratings grow ingestion's memory with the data (36 bytes a rating in column
arrays: 1.8 GiB at 25M). Instead, one pass over the ratings file writes each valid rating
twice, in binary records: in file order (from which the CSV splits are written, in the same
order as the file), and into the partition of its user (a hash of the user id). Each user's
ratings are all in one partition, so the duplicate (user, movie) pairs and the per-user splits
are decided a partition at a time.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np

from components.data import movielens_formats as formats
from components.data import movielens_splits as splits

PARTITION_BYTES = 6 << 20   # of ratings-file text per partition: about 270,000 ratings
MAX_PARTITIONS = 256        # files open at once while partitioning
FILE_ORDER_ROWS = 1 << 18   # records read back at a time in file order

# A rating in its user's partition. `row` is its place among the file's valid ratings (its
# record's place in file order); `key` its random key (movielens_splits.LineKeys).
PARTITION_RECORD = np.dtype([('row', '<i8'), ('user', '<i8'), ('movie', '<i8'),
                             ('timestamp', '<i8'), ('line', '<i8'), ('key', '<f8')])
FILE_ORDER_RECORD = np.dtype([('user', '<i8'), ('movie', '<i8'), ('rating', '<f4'),
                              ('timestamp', '<i8'), ('line', '<i8')])
_FILE_ORDER = 'file_order.bin'


def partition_count(path: str) -> int:
  """Partitions for a ratings file: about PARTITION_BYTES of its text each."""
  return int(min(max(1, -(-os.path.getsize(path) // PARTITION_BYTES)), MAX_PARTITIONS))


def partition_of(users: np.ndarray, count: int) -> np.ndarray:
  """Each user's partition: a multiplicative hash of the id (ids close together spread)."""
  mixed = users.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
  return ((mixed >> np.uint64(32)) % np.uint64(count)).astype(np.int64)


class UserPartitions:
  """The valid ratings of one file, in `folder`: in file order and partitioned by user."""

  def __init__(self, folder: str, count: int):
    self.folder, self.count = folder, count
    self.num_rows = 0          # valid ratings (duplicates included), the records in file order
    self.num_kept = 0          # of which not a repeat of an earlier (user, movie) pair
    self.repeat_rows = np.zeros(0, np.int64)  # the rows of the repeats, increasing

  def _path(self, partition: int) -> str:
    return os.path.join(self.folder, f'partition-{partition:05d}.bin')

  @classmethod
  def write(cls, folder: str, count: int, chunks: Iterable[List[np.ndarray]],
            keys: splits.LineKeys) -> 'UserPartitions':
    """Writes the ratings of `chunks` (formats.rating_chunks: five columns a chunk, in file
    order), each with its key."""
    parts = cls(folder, count)
    os.makedirs(folder, exist_ok=True)
    files = [open(parts._path(p), 'wb') for p in range(count)]  # pylint: disable=consider-using-with
    try:
      with open(os.path.join(folder, _FILE_ORDER), 'wb') as in_order:
        for user, movie, rating, timestamp, line in chunks:
          n = len(user)
          record = np.empty(n, FILE_ORDER_RECORD)
          record['user'], record['movie'], record['rating'] = user, movie, rating
          record['timestamp'], record['line'] = timestamp, line
          record.tofile(in_order)
          del record
          record = np.empty(n, PARTITION_RECORD)
          record['row'] = np.arange(parts.num_rows, parts.num_rows + n)
          record['user'], record['movie'], record['timestamp'] = user, movie, timestamp
          record['line'], record['key'] = line, keys.of(line)
          which = partition_of(user, count)
          order = np.argsort(which, kind='stable')
          bounds = np.searchsorted(which[order], np.arange(count + 1))
          for p in np.flatnonzero(np.diff(bounds)).tolist():
            record[order[bounds[p]:bounds[p + 1]]].tofile(files[p])
          parts.num_rows += n
    finally:
      for f in files:
        f.close()
    parts.num_kept = parts.num_rows
    return parts

  def load(self, partition: int) -> np.ndarray:
    """One partition's records (after `drop_repeats`, without the repeats), in file order."""
    return np.fromfile(self._path(partition), PARTITION_RECORD)

  def drop_repeats(self, path: str, encoding: str, bad: formats.BadRows) -> None:
    """Rejects every repeat of a (user, movie) pair, as formats.without_duplicates does (the
    same messages, in file order), and removes it from its partition."""
    found = []
    for p in range(self.count):
      record = self.load(p)
      order = np.lexsort((record['row'], record['movie'], record['user']))
      user, movie = record['user'][order], record['movie'][order]
      first = np.ones(len(record), bool)  # the first rating of its pair, in sorted order
      first[1:] = (user[1:] != user[:-1]) | (movie[1:] != movie[:-1])
      if first.all():
        continue
      lines = record['line'][order]
      first_lines = lines[np.flatnonzero(first)][np.cumsum(first) - 1]
      repeat = ~first
      found.append((record['row'][order][repeat], lines[repeat], movie[repeat], user[repeat],
                    first_lines[repeat]))
      keep = np.ones(len(record), bool)
      keep[order[repeat]] = False
      record[keep].tofile(self._path(p))
    if not found:
      return
    rows, lines, movies, users, first_lines = (np.concatenate(c) for c in zip(*found))
    formats.reject_repeats(path, encoding, bad, lines, movies, users, first_lines)
    self.repeat_rows = np.sort(rows)
    self.num_kept = self.num_rows - len(rows)

  def kept_before(self, rows: np.ndarray) -> np.ndarray:
    """For each of `rows`, how many kept ratings come before it in the file."""
    return rows - np.searchsorted(self.repeat_rows, rows)

  def kept(self, start: int, count: int, sample: Optional[int] = None) -> np.ndarray:
    """Which of rows start..start+count are kept: not repeats, and among the first `sample`
    kept ratings if given."""
    rows = np.arange(start, start + count)
    keep = ~np.isin(rows, self.repeat_rows)
    if sample is not None:
      keep &= self.kept_before(rows) < sample
    return keep

  def in_file_order(self) -> Iterator[Tuple[int, np.ndarray]]:
    """(first row, records) of every rating, repeats included, FILE_ORDER_ROWS at a time."""
    start = 0
    with open(os.path.join(self.folder, _FILE_ORDER), 'rb') as f:
      while True:
        record = np.fromfile(f, FILE_ORDER_RECORD, FILE_ORDER_ROWS)
        if not len(record):
          return
        yield start, record
        start += len(record)
