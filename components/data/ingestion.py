"""Turns a MovieLens folder (or a GroupLens download) into the CSV input splits of the pipeline.

One row per rating, joined with its user and movie features, written as `train/` and `eval/`
under `<pipeline-root>/data/<fingerprint>/`. Malformed rows stop ingestion (`on_bad_rows='fail'`)
or are dropped and listed with their reasons in `rejected_rows.csv` (`'skip'`), next to the
splits and in the output folder. The fingerprint covers the source files' contents
and every option, so an unchanged re-run reuses the same files and TFX's cache stays valid.
The folder appears only complete: it is written elsewhere and renamed into place. With
`span`, the ratings are cut into time spans instead (components/data/spans.py): every span's
ratings as `span-N/eval/`, and a run's training window as `span-N/train/`, added once per span.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from components import atomic_files
from components.data import features
from components.data import movielens_download as download
from components.data import movielens_formats as formats
from components.data import movielens_splits as splits
from components.data import partitioned_splits
from components.data import spans
from components.data import user_partitions

INGESTION_VERSION = 2  # bump when the written files change for the same inputs
TRAIN, EVAL = 'train', 'eval'
EXAMPLES_FILE = 'ratings.csv'
REJECTED_FILE = 'rejected_rows.csv'
REJECTED_COLUMNS = ['file', 'line', 'reason', 'problem', 'text']
CATALOGUE_FILE = 'movies.csv'
INFO_FILE = 'dataset.json'
# ML-1M's eval split (200K ratings) is evaluated whole; a 10M dataset's (2M) through about a
# quarter of its users.
DEFAULT_MAX_EVAL_RATINGS = 500_000


@dataclasses.dataclass(frozen=True)
class IngestionOptions:
  data_dir: Optional[str] = None   # None: the cached or downloaded GroupLens copy
  dataset: Optional[str] = None    # None: detected from the files (ml-100k when downloading)
  split: str = splits.RANDOM
  eval_fraction: float = 0.2
  seed: int = 42
  sample: Optional[int] = None     # use only the first N ratings of the file
  cache_dir: Optional[str] = None
  on_bad_rows: str = formats.FAIL  # or formats.SKIP
  # Beyond this many eval ratings, evaluate all eval ratings of a seeded sample of the users
  # (splits.evaluated_users_mask); None evaluates every eval rating.
  max_eval_ratings: Optional[int] = DEFAULT_MAX_EVAL_RATINGS
  # Time spans instead of a split (components/data/spans.py): the period ('month' or 'week'),
  # the span to evaluate on (None: the latest) and how many earlier spans train (0: all).
  span: Optional[str] = None
  eval_span: Optional[int] = None
  window: int = 0


@dataclasses.dataclass(frozen=True)
class PreparedData:
  """The prepared data the pipeline reads, however it was prepared: `prepare_examples` here
  (a local run, with `info`: what ingestion found) or pipeline/prepare_data.py's layout under a
  cluster's data root. `create_pipeline` takes it whole."""
  dataset: str                    # a movielens_formats.DATASETS name
  input_base: str                 # CsvExampleGen's: train/ and eval/, or span-N/ folders
  catalogue_path: str             # every movie of the dataset, for serving the whole catalogue
  rating_range: Tuple[float, float]  # the dataset's lowest and highest rating
  has_demographics: bool          # user age, gender, occupation, zip (the Evaluator slices by)
  schema_path: str = ''           # the curated schema for this data (pipeline/schema.py
                                  # `with_schema`); '' until it is written
  info: Dict = dataclasses.field(default_factory=dict)  # dataset.json, for the run summary
  # With spans (components/data/spans.py): their period, and the span the run is evaluated on
  # (None: the latest, which CsvExampleGen finds).
  span_period: Optional[str] = None
  eval_span: Optional[int] = None

  @property
  def num_ratings(self) -> int:
    """Ratings in the run's train and eval splits (with spans, its window's and its span's);
    0 where they were not counted (a cluster's data root, prepared by another process)."""
    counts = self.info.get('num_ratings')
    return sum(counts.values()) if isinstance(counts, dict) else 0

  @property
  def splits_dir(self) -> str:
    """The folder holding this run's train/ and eval/ (with spans, its eval span's)."""
    if self.span_period and self.eval_span is not None:
      return os.path.join(self.input_base, spans.FOLDER.format(self.eval_span))
    return self.input_base


def _prepared(target: str, info: Dict, span_period: Optional[str] = None) -> PreparedData:
  scale = info['rating_scale']
  return PreparedData(dataset=info['dataset'], input_base=target,
                      catalogue_path=os.path.join(target, CATALOGUE_FILE),
                      rating_range=(scale['low'], scale['high']),
                      has_demographics=info['has_demographics'], info=info,
                      span_period=span_period, eval_span=info.get('eval_span'))


def locate_data(options: IngestionOptions) -> str:
  """The folder to read: the given one, else the cache, else a fresh verified download."""
  if options.data_dir:
    if not os.path.isdir(options.data_dir):
      raise formats.IngestionError(options.data_dir, 'no such folder (--data-dir)')
    return options.data_dir
  dataset = options.dataset or formats.ML_100K
  return (download.cached_dataset_dir(dataset, options.cache_dir)
          or download.download_dataset(dataset, options.cache_dir))


def file_sha256(path: str) -> str:
  """The file's SHA-256, read a block at a time."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def _fingerprint(data_dir: str, dataset: str, options: IngestionOptions) -> str:
  names = sorted(n for n in os.listdir(data_dir) if os.path.isfile(os.path.join(data_dir, n)))
  sources = {n: file_sha256(os.path.join(data_dir, n)) for n in names}
  key = {'version': INGESTION_VERSION, 'dataset': dataset, 'split': options.split,
         'eval_fraction': options.eval_fraction, 'seed': options.seed,
         'sample': options.sample, 'on_bad_rows': options.on_bad_rows,
         'max_eval_ratings': options.max_eval_ratings, 'sources': sources}
  if options.span:  # not the eval span: one folder serves every span's run
    key.update(span=options.span, window=options.window)
  key = json.dumps(key, sort_keys=True)
  return hashlib.sha256(key.encode()).hexdigest()[:16]


ROWS_PER_SLICE = 1 << 16  # ratings turned into CSV lines at a time


def _csv_fields(values) -> str:
  """`values` as the fields of one CSV line, quoted as csv.writer quotes them."""
  out = io.StringIO()
  csv.writer(out, lineterminator='').writerow(values)
  return out.getvalue()


class ExampleLines:
  """Joins ratings with their movie's and user's features into CSV lines (features.raw_columns
  order). Each movie's and user's fields are quoted once, here; a rating's own four fields are
  numbers that never need quoting."""

  def __init__(self, movies: Dict[int, formats.Movie],
               users: Optional[Dict[int, formats.User]]):
    self.movie_fields = {movie_id: _csv_fields([movie.title, movie.release_year,
                                                features.GENRE_SEPARATOR.join(movie.genres)])
                         for movie_id, movie in movies.items()}
    if users is None:  # no user columns: every user's fields are empty
      self.user_fields = collections.defaultdict(str)
    else:
      self.user_fields = {
          user_id: _csv_fields([user.age, user.gender, user.occupation, user.zip_code]) + ','
          for user_id, user in users.items()}

  def __call__(self, ratings: formats.Ratings,
               mask: Optional[np.ndarray] = None) -> Iterator[str]:
    """The lines of `ratings` (those where `mask` is True if given): text blocks of up to
    ROWS_PER_SLICE lines. No Python object per rating outlives its block."""
    users, movies = self.user_fields, self.movie_fields
    for start in range(0, len(ratings), ROWS_PER_SLICE):
      part = slice(start, start + ROWS_PER_SLICE)
      chosen = ratings.take(part) if mask is None else ratings.take(part).take(mask[part])
      yield ''.join(f'{user_id},{movie_id},{rating!r},{timestamp},{users[user_id]}'
                    f'{movies[movie_id]}\n'
                    for user_id, movie_id, rating, timestamp in zip(
                        chosen.user_id.tolist(), chosen.movie_id.tolist(),
                        chosen.rating.astype(np.float64).tolist(), chosen.timestamp.tolist()))


def example_lines(data: formats.MovieLensData, ratings: formats.Ratings,
                  mask: Optional[np.ndarray] = None) -> Iterator[str]:
  """ExampleLines of `data`'s movies and users over `ratings`."""
  return ExampleLines(data.movies, data.users)(ratings, mask)


def _header(has_demographics: bool) -> str:
  return ','.join(features.raw_columns(has_demographics)) + '\n'


def write_examples(path: str, data: formats.MovieLensData, ratings: formats.Ratings,
                   mask: Optional[np.ndarray] = None) -> None:
  """`example_lines` under the raw header, written then renamed (atomic_files)."""
  with atomic_files.replace(path, 'w', newline='') as f:
    f.write(_header(data.has_demographics))
    for block in example_lines(data, ratings, mask):
      f.write(block)


def _publish_rejected(prepared_dir: str, output_root: str, policy: str) -> Optional[str]:
  """Copies the prepared data's list of rejected rows to `<output_root>/rejected_rows.csv`
  (written aside, then renamed); under FAIL, removes a stale list from an earlier run."""
  target = os.path.join(output_root, REJECTED_FILE)
  if policy != formats.SKIP:
    if os.path.isfile(target):
      os.remove(target)
    return None
  return atomic_files.copy(os.path.join(prepared_dir, REJECTED_FILE), target)


def rejected_summary(bad: formats.BadRows) -> Dict:
  by_file: Dict[str, int] = {}
  for row in bad.rejected:
    name = os.path.basename(row.path)
    by_file[name] = by_file.get(name, 0) + 1
  return {'policy': bad.policy, 'total': len(bad.rejected), 'by_reason': bad.counts(),
          'by_file': by_file}


def describe_rejected_rows(info: Dict) -> Optional[str]:
  """'N malformed rows skipped (reason: count, ...), listed in FILE' under --on-bad-rows skip."""
  rejected = info.get('rejected_rows') or {}
  if rejected.get('policy') != formats.SKIP:
    return None
  if not rejected['total']:
    return 'No malformed rows (--on-bad-rows skip).'
  reasons = ', '.join(f'{reason}: {count}' for reason, count in rejected['by_reason'].items())
  return (f'{rejected["total"]} malformed rows skipped ({reasons}), listed in '
          f'{info.get("rejected_file")}.')


def describe_eval_sample(info: Dict) -> Optional[str]:
  """'Evaluating on N of M eval ratings: ...' when the eval ratings were sampled."""
  sample = info.get('eval_sample')
  if not sample:
    return None
  return (f'Evaluating on {info["num_ratings"][EVAL]:,} of {sample["eval_ratings"]:,} eval '
          f'ratings: all eval ratings of {sample["users"]:,} of {sample["eval_users"]:,} users, '
          f'a seeded sample (--max-eval-ratings {sample["max_eval_ratings"]}; 0 evaluates '
          'all).')


def data_notes(info: Dict) -> List[str]:
  """What the run summary and the report say about the prepared data: the rows skipped and
  the eval sample, where there are any."""
  return [note for note in (describe_rejected_rows(info), describe_eval_sample(info)) if note]


def write_csv(path: str, header: List[str], rows) -> None:
  """`rows` under `header` as CSV, written then renamed (atomic_files)."""
  with atomic_files.replace(path, 'w', newline='') as f:
    writer = csv.writer(f, lineterminator='\n')
    writer.writerow(header)
    writer.writerows(rows)


def check_options(options: IngestionOptions) -> None:
  """The options' values that need no data, checked before any is downloaded or read."""
  if options.sample is not None and options.sample < 2:
    raise ValueError(f'--sample must be at least 2 ratings, got {options.sample}')
  if options.span is not None and options.span not in spans.PERIODS:
    raise ValueError(f'--span must be one of {", ".join(spans.PERIODS)}, got {options.span!r}')
  splits.check_eval_fraction(options.eval_fraction)
  if options.max_eval_ratings is not None:
    splits.check_max_eval_ratings(options.max_eval_ratings)


def prepare_examples(options: IngestionOptions, output_root: str) -> PreparedData:
  """Reads, validates, joins and splits the ratings (or cuts them into spans); returns the
  prepared input folder. An unchanged re-run reuses it."""
  check_options(options)  # before a download
  data_dir = formats.resolve_data_dir(locate_data(options))
  dataset = options.dataset or formats.detect_dataset(data_dir)
  splits.validate_strategy(options.split, dataset)
  target = os.path.join(output_root, 'data', _fingerprint(data_dir, dataset, options))
  if not os.path.isfile(os.path.join(target, INFO_FILE)):
    _write_prepared(data_dir, dataset, options, target)
  with open(os.path.join(target, INFO_FILE), encoding='utf-8') as f:
    info = json.load(f)
  if options.span:  # this run's training window and eval span
    info.update(spans.run_info(info, options.eval_span, options.window))
    write_window(target, info)
  info['rejected_file'] = _publish_rejected(target, output_root, options.on_bad_rows)
  return _prepared(target, info, options.span)


def open_prepared(root: str, eval_span: Optional[int] = None) -> PreparedData:
  """Prepared data as it is under `root` (pipeline/prepare_data.py's layout, or a local
  ingestion's folder); with spans, the run for `eval_span` (None: the latest)."""
  path = os.path.join(root, INFO_FILE)
  if not os.path.isfile(path):
    raise formats.IngestionError(path, 'not prepared data (no dataset.json): prepare it with '
                                 'python -m pipeline.prepare_data')
  with open(path, encoding='utf-8') as f:
    info = json.load(f)
  period = info.get('span_period')
  if period:
    info.update(spans.run_info(info, eval_span, info.get('window', 0)))
    write_window(root, info)
  elif eval_span is not None:
    raise ValueError(f'--eval-span: {root} is not in spans (prepared without --span)')
  info['rejected_file'] = None
  return _prepared(root, info, period)


def _write_prepared(data_dir: str, dataset: str, options: IngestionOptions, target: str) -> None:
  bad = formats.BadRows(options.on_bad_rows)
  # KEEP: a concurrent twin's identical folder (the same fingerprint) may be there first.
  with atomic_files.publish_folder(target, atomic_files.KEEP) as staged:
    staging = staged.path
    in_memory = options.split.startswith('canonical:') and not options.span
    write = _write_in_memory if in_memory else _write_streamed
    movies, users, found = write(data_dir, dataset, options, bad, staging)
    write_catalogue(os.path.join(staging, CATALOGUE_FILE), movies)
    if bad.policy == formats.SKIP:
      write_csv(os.path.join(staging, REJECTED_FILE), REJECTED_COLUMNS,
                 ([os.path.basename(r.path), r.line, r.reason, r.problem, r.text]
                  for r in bad.rejected))
    info = {
        'dataset': dataset, 'source_dir': os.path.abspath(data_dir),
        'has_demographics': users is not None,
        'rating_scale': dataclasses.asdict(formats.RATING_SCALES[dataset]),
        'split': f'span:{options.span}' if options.span else options.split,
        'eval_fraction': options.eval_fraction, 'seed': options.seed,
        'sample': options.sample, 'columns': features.raw_columns(users is not None),
        'num_movies': len(movies),
        'rejected_rows': rejected_summary(bad),
        **found,
    }
    with open(os.path.join(staging, INFO_FILE), 'w', encoding='utf-8') as f:
      json.dump(info, f, indent=2, sort_keys=True)


def _write_streamed(data_dir: str, dataset: str, options: IngestionOptions,
                    bad: formats.BadRows, staging: str):
  """Writes a random, per-user, cold-user or temporal split, or the time spans, without holding
  the ratings: through files partitioned by user (components/data/user_partitions.py) in a
  folder beside `staging`, removed afterwards. Returns (movies, users or None, what
  dataset.json says of the ratings)."""
  movies, users = formats.read_movies_and_users(data_dir, dataset, bad)
  path = formats.ratings_path(data_dir, dataset)
  sep, header = formats.ratings_layout(dataset)
  scale = formats.RATING_SCALES[dataset]
  with tempfile.TemporaryDirectory(prefix='.partitions-', dir=os.path.dirname(staging)) as tmp:
    parts = user_partitions.UserPartitions.write(
        tmp, user_partitions.partition_count(path),
        formats.rating_chunks(path, sep, header, scale, movies, users, bad),
        splits.LineKeys(options.seed, formats.first_rating_line(dataset)))
    parts.drop_repeats(path, formats.rating_encoding(header), bad)
    if not parts.num_kept:
      raise formats.no_ratings_left(path, bad)
    write = _write_spans if options.span else _write_split
    found = write(parts, ExampleLines(movies, users), options, staging,
                  _header(users is not None), path)
  return movies, users, found


def _write_split(parts: user_partitions.UserPartitions, lines: ExampleLines,
                 options: IngestionOptions, staging: str, header: str, path: str) -> Dict:
  """train/ and eval/ of the split, in file order."""
  decided = partitioned_splits.decide(parts, options.split, options.eval_fraction,
                                      options.seed, options.sample, options.max_eval_ratings)
  paths = {name: os.path.join(staging, name, EXAMPLES_FILE) for name in (TRAIN, EVAL)}
  with atomic_files.replace(paths[TRAIN], 'w', newline='') as train_file, \
       atomic_files.replace(paths[EVAL], 'w', newline='') as eval_file:
    files = {TRAIN: train_file, EVAL: eval_file}
    for f in files.values():
      f.write(header)
    for start, record in parts.in_file_order():
      ratings = _ratings_of(record, path)
      for name, f in files.items():
        for block in lines(ratings, decided.rows(name, start, len(record), record['user'])):
          f.write(block)
  return {'eval_sample': decided.eval_sample, 'num_users': decided.num_users,
          'num_movies_rated': decided.num_movies_rated, 'num_ratings': decided.num_ratings}


def _write_spans(parts: user_partitions.UserPartitions, lines: ExampleLines,
                 options: IngestionOptions, staging: str, header: str, path: str) -> Dict:
  """Every span's ratings as `span-N/eval/`, in file order: each block of the file-order
  records is appended to the files of the spans it holds (inside `staging`, which is published
  whole)."""
  stats: Dict[int, List[int]] = {}  # span: [ratings, first timestamp, last timestamp]
  users, movies = np.zeros(0, np.int64), np.zeros(0, np.int64)
  for start, record in parts.in_file_order():
    record = record[parts.kept(start, len(record), options.sample)]
    numbers = spans.span_numbers(record['timestamp'], options.span)
    for span in np.unique(numbers).tolist():
      chosen = record[numbers == span]
      times = chosen['timestamp']
      new = span not in stats  # its file is not written yet
      count, low, high = stats.get(span, (0, times.min(), times.max()))
      stats[span] = [count + len(chosen), min(low, times.min()), max(high, times.max())]
      file_path = spans.split_file(staging, span, EVAL, EXAMPLES_FILE)
      if new:
        os.makedirs(os.path.dirname(file_path))
      with open(file_path, 'a', encoding='utf-8', newline='') as f:
        if new:
          f.write(header)
        for block in lines(_ratings_of(chosen, path)):
          f.write(block)
    users = np.union1d(users, record['user'])
    movies = np.union1d(movies, record['movie'])
  summary = {str(span): {'ratings': int(count), 'min_timestamp': int(low),
                         'max_timestamp': int(high)}
             for span, (count, low, high) in sorted(stats.items())}
  return {'eval_sample': None, 'num_users': len(users), 'num_movies_rated': len(movies),
          'spans': summary, 'span_period': options.span, 'window': options.window}


def _ratings_of(record: np.ndarray, path: str) -> formats.Ratings:
  """Ratings over file-order records (user_partitions.FILE_ORDER_RECORD)."""
  return formats.Ratings(record['user'], record['movie'], record['rating'],
                         record['timestamp'], record['line'], path)


def _write_in_memory(data_dir: str, dataset: str, options: IngestionOptions,
                     bad: formats.BadRows, staging: str):
  """Writes a split from the ratings held in memory: ML-100K's published folds (100,000
  ratings), which name ratings by (user, movie), and any split as the definition the streamed
  writer is tested against. Returns what `_write_streamed` does."""
  data = formats.read_movielens(data_dir, dataset, bad)
  ratings = data.ratings if options.sample is None else data.ratings.take(
      slice(0, options.sample))
  is_eval = splits.eval_mask(data, ratings, options.split, options.eval_fraction, options.seed)
  is_train = ~is_eval  # before any eval sampling: an unsampled eval rating never trains
  eval_sample = None  # every eval rating is evaluated
  if options.max_eval_ratings is not None:
    evaluated = splits.evaluated_users_mask(ratings.user_id, is_eval, options.max_eval_ratings,
                                            options.seed)
    if (evaluated != is_eval).any():
      eval_sample = splits.eval_sample_summary(
          options.max_eval_ratings, int(is_eval.sum()),
          int(len(np.unique(ratings.user_id[is_eval]))),
          int(len(np.unique(ratings.user_id[evaluated]))))
      is_eval = evaluated
  for split_name, mask in ((TRAIN, is_train), (EVAL, is_eval)):
    write_examples(os.path.join(staging, split_name, EXAMPLES_FILE), data, ratings, mask)
  return data.movies, data.users, {
      'eval_sample': eval_sample, 'num_users': int(len(np.unique(ratings.user_id))),
      'num_movies_rated': int(len(np.unique(ratings.movie_id))),
      'num_ratings': {TRAIN: int(is_train.sum()), EVAL: int(is_eval.sum())}}


def write_window(target: str, info: Dict) -> None:
  """`span-N/train/` of the run's eval span N: its training spans' rows, one after the other
  (written once, then reused by every run for span N)."""
  span = info['eval_span']
  folder = os.path.dirname(spans.split_file(target, span, TRAIN, EXAMPLES_FILE))
  if os.path.isdir(folder):
    return
  with atomic_files.publish_folder(folder, atomic_files.KEEP) as staged:
    concatenate_spans(target, info['train_spans'], os.path.join(staged.path, EXAMPLES_FILE))


def concatenate_spans(root: str, span_numbers: List[int], path: str) -> None:
  """The eval rows of `span_numbers` under `root`, one file after the other, into `path`
  (one header; the files are not parsed again)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as out:
    for number, span in enumerate(span_numbers):
      with open(spans.split_file(root, span, EVAL, EXAMPLES_FILE), 'rb') as f:
        header = f.readline()
        if number == 0:
          out.write(header)
        shutil.copyfileobj(f, out, length=1 << 20)


def write_catalogue(path: str, movies: Dict[int, formats.Movie]) -> None:
  """movies.csv: every movie of the dataset, the catalogue the models serve."""
  write_csv(path, [features.MOVIE_ID, features.TITLE, features.RELEASE_YEAR, features.GENRES],
            ([m.movie_id, m.title, m.release_year, features.GENRE_SEPARATOR.join(m.genres)]
             for m in sorted(movies.values(), key=lambda m: m.movie_id)))
