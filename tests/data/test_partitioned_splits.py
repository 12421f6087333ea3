"""Ingestion through files partitioned by user writes what ingestion from ratings held in memory
writes (movielens_splits' definitions): the same CSV splits byte for byte, the same counts, the
same rejected rows and errors. Partitions, chunks and histogram rounds are made tiny here so
that every path (many partitions, narrowing rounds, ties) runs on small data."""

import os
import shutil

import numpy as np
import pytest

from bench import synth
from components.data import ingestion
from components.data import movielens_formats as formats
from components.data import movielens_splits as splits
from components.data import partitioned_splits
from components.data import spans
from components.data import user_partitions

STRATEGIES = (splits.RANDOM, splits.PER_USER, splits.COLD_USERS, splits.TEMPORAL)


@pytest.fixture
def tiny_parts(monkeypatch):
  monkeypatch.setattr(user_partitions, 'PARTITION_BYTES', 40_000)
  monkeypatch.setattr(user_partitions, 'FILE_ORDER_ROWS', 7_777)
  monkeypatch.setattr(formats, 'CHUNK_BYTES', 100_000)
  monkeypatch.setattr(partitioned_splits, 'BINS', 16)
  monkeypatch.setattr(partitioned_splits, 'EXACT_ROWS', 100)


def _both(tmp_path, data_dir, **options):
  """(files, what was found, rejected rows) of each writer, or the error each raised."""
  options = ingestion.IngestionOptions(data_dir=str(data_dir), **options)
  dataset = formats.detect_dataset(str(data_dir))
  results = []
  for name, write in (('streamed', ingestion._write_streamed),
                      ('in_memory', ingestion._write_in_memory)):
    staging = tmp_path / name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    bad = formats.BadRows(options.on_bad_rows)
    try:
      _, _, found = write(str(data_dir), dataset, options, bad, str(staging))
    except formats.IngestionError as e:
      results.append(('error', str(e)))
      continue
    files = {split: (staging / split / ingestion.EXAMPLES_FILE).read_bytes()
             for split in (ingestion.TRAIN, ingestion.EVAL)}
    results.append((files, found, bad.rejected))
    assert sorted(os.listdir(tmp_path / name)) == [ingestion.EVAL, ingestion.TRAIN]
  assert not [n for n in os.listdir(tmp_path) if n.startswith('.partitions-')]
  return results


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_real_ml100k_splits_are_the_in_memory_ones(tmp_path, ml100k_dir, tiny_parts, strategy):
  for extra in ({}, {'max_eval_ratings': 5_000, 'seed': 7}, {'sample': 30_001},
                {'eval_fraction': 0.1, 'max_eval_ratings': None}):
    streamed, in_memory = _both(tmp_path, ml100k_dir, split=strategy, **extra)
    assert streamed == in_memory, (strategy, extra)
    files, found, _ = streamed
    assert files[ingestion.EVAL].count(b'\n') - 1 == found['num_ratings']['eval'] > 0


def test_sampled_eval_users_match(tmp_path, ml100k_dir, tiny_parts):
  streamed, in_memory = _both(tmp_path, ml100k_dir, max_eval_ratings=5_000)
  assert streamed == in_memory
  sample = streamed[1]['eval_sample']
  assert sample['eval_ratings'] == 20_000 and sample['users'] < sample['eval_users']
  assert 4_000 < streamed[1]['num_ratings']['eval'] <= 5_000


def test_per_user_split_of_a_clean_file_is_the_one_before_line_keys(ml100k_dir):
  """Keys drawn by line are the old keys (the stream in rating order) on a file with no bad
  rows: the per-user split, the protocol of the published top-10 tables, did not move."""
  data = formats.read_movielens(ml100k_dir)
  n = len(data.ratings)
  users = data.ratings.user_id
  order = np.lexsort((np.random.default_rng(42).random(n), users))
  _, starts, counts = np.unique(users[order], return_index=True, return_counts=True)
  rank = np.arange(n) - np.repeat(starts, counts)
  before = np.zeros(n, bool)
  before[order] = rank >= np.repeat(np.floor(counts * 0.8 + 0.5).astype(np.int64), counts)
  assert (splits.eval_mask(data, data.ratings, splits.PER_USER, 0.2, 42) == before).all()


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_synthetic_latest_format_with_a_header(tmp_path, tiny_parts, strategy):
  synth.write(str(tmp_path / 'src'), 60_000, seed=3)
  streamed, in_memory = _both(tmp_path, tmp_path / 'src', split=strategy,
                              max_eval_ratings=4_000)
  assert streamed == in_memory


def _dirty_copy(ml100k_dir, folder):
  """Real ML-100K with bad rows and repeated pairs spread through the file."""
  shutil.copytree(ml100k_dir, folder)
  path = folder / 'u.data'
  lines = path.read_bytes().decode('latin-1').splitlines()
  bad = {5: '1\t1\t9\t1', 20_000: '', 40_000: '2\tx\t3\t1', 60_000: '1\t99999\t3\t1'}
  repeats = {30_000: lines[10], 70_000: lines[29_999], 99_990: lines[50_000]}
  out = []
  for number, text in enumerate(lines):
    out.append(text)
    for extra in (bad, repeats):
      if number in extra:
        out.append(extra[number])
  path.write_bytes(('\n'.join(out) + '\n').encode('latin-1'))
  return folder


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_bad_rows_and_repeats_are_rejected_alike(tmp_path, ml100k_dir, tiny_parts, strategy):
  folder = _dirty_copy(ml100k_dir, tmp_path / 'dirty')
  streamed, in_memory = _both(tmp_path, folder, split=strategy, on_bad_rows=formats.SKIP)
  assert streamed == in_memory
  rejected = streamed[2]
  assert [r.reason for r in rejected].count(formats.DUPLICATE) == 3
  assert len(rejected) == 7 and sum(streamed[1]['num_ratings'].values()) == 100_000
  failed = _both(tmp_path, folder, split=strategy)
  assert failed[0] == failed[1] and failed[0][0] == 'error' and 'u.data:7:' in failed[0][1]


def test_the_first_repeat_in_the_file_is_the_error(tmp_path, ml100k_dir, tiny_parts):
  folder = tmp_path / 'repeats'
  shutil.copytree(ml100k_dir, folder)
  lines = (folder / 'u.data').read_text('latin-1').splitlines()
  lines[90_000:90_000] = [lines[3]]     # line 90001 repeats line 4 ...
  lines[60_000:60_000] = [lines[80_000]]  # ... and line 60001 a later line (80001 -> 80002)
  (folder / 'u.data').write_text('\n'.join(lines) + '\n', 'latin-1')
  streamed, in_memory = _both(tmp_path, folder)
  assert streamed == in_memory and streamed[0] == 'error'
  assert 'u.data:80002: duplicate rating' in streamed[1]
  assert '(first rated on line 60001)' in streamed[1]


def test_kth_smallest_is_the_sorted_kth(monkeypatch):
  monkeypatch.setattr(partitioned_splits, 'BINS', 8)
  monkeypatch.setattr(partitioned_splits, 'EXACT_ROWS', 5)
  rng = np.random.default_rng(0)
  for values in (rng.random(3_000), rng.integers(0, 4, 3_000), np.full(3_000, 7),
                 rng.integers(-10**9, 10**9, 3_000)):
    ties = rng.permutation(3_000) * 3 - 4_000
    chunks = lambda v=values, t=ties: ((v[i:i + 700], t[i:i + 700]) for i in range(0, 3_000, 700))
    order = np.lexsort((ties, values))
    for k in (1, 2, 999, 2_999, 3_000):
      assert partitioned_splits.kth_smallest(chunks, k) == (values[order[k - 1]],
                                                            ties[order[k - 1]])
    assert partitioned_splits.kth_smallest(chunks, 0) is None


def test_bits_round_trip():
  bits = np.zeros(20, np.uint8)
  rows = np.array([0, 3, 7, 8, 9, 63, 150, 159])
  partitioned_splits.set_bits(bits, rows)
  assert np.flatnonzero(partitioned_splits.bits_between(bits, 0, 160)).tolist() == rows.tolist()
  assert np.flatnonzero(partitioned_splits.bits_between(bits, 5, 100)).tolist() == [2, 3, 4, 58]


@pytest.mark.parametrize('period', spans.PERIODS)
def test_spans_are_those_of_the_ratings_in_memory(tmp_path, ml100k_dir, tiny_parts, period):
  """Time spans written from the file-order records: each span's file is the rows of that span
  in file order, with repeats dropped and --sample applied, as from ratings held in memory."""
  folder = _dirty_copy(ml100k_dir, tmp_path / 'dirty')
  for sample in (None, 40_001):
    options = ingestion.IngestionOptions(data_dir=str(folder), span=period, sample=sample,
                                         on_bad_rows=formats.SKIP)
    staging = tmp_path / f'streamed-{sample}'
    staging.mkdir()
    bad = formats.BadRows(formats.SKIP)
    _, _, found = ingestion._write_streamed(str(folder), formats.ML_100K, options, bad,
                                            str(staging))
    in_memory = formats.BadRows(formats.SKIP)
    data = formats.read_movielens(str(folder), bad_rows=in_memory)
    ratings = data.ratings if sample is None else data.ratings.take(slice(0, sample))
    numbers = spans.span_numbers(ratings.timestamp, period)
    assert bad.rejected == in_memory.rejected and len(bad.rejected) == 7
    assert found['spans'] == spans.summary(ratings.timestamp, numbers)
    assert found['num_users'] == len(np.unique(ratings.user_id))
    assert found['num_movies_rated'] == len(np.unique(ratings.movie_id))
    written = sorted(os.listdir(staging))
    assert written == sorted(f'span-{s}' for s in np.unique(numbers).tolist()) and written
    for span in np.unique(numbers).tolist():
      reference = tmp_path / 'reference.csv'
      ingestion.write_examples(str(reference), data, ratings, numbers == span)
      assert (staging / f'span-{span}' / ingestion.EVAL / ingestion.EXAMPLES_FILE).read_bytes() \
          == reference.read_bytes()
  assert not [n for n in os.listdir(tmp_path) if n.startswith('.partitions-')]
