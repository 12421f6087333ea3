"""Readers for the four MovieLens file formats, with errors that name file, line and problem.

MovieLens ships in four layouts that differ in separators, encodings, rating scales and which
side files exist. Each reader turns one layout into the same `MovieLensData`, and validates every
row on the way. What happens to a malformed row is the `BadRows` policy: `fail` (the default)
stops ingestion with `IngestionError("file:line: problem")` instead of the row being dropped or
surfacing later as a deep traceback inside Beam; `skip` drops the row and records it (file, line,
reason, text), so that no row disappears without being counted. Problems with a whole file (it
is missing, empty, or has the wrong header) stop ingestion under either policy.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

ML_100K = 'ml-100k'
ML_1M = 'ml-1m'
ML_10M = 'ml-10m'  # also ML-10M100K's name; ML-20M and later are ML_LATEST's layout
ML_LATEST = 'ml-latest'
DATASETS = (ML_100K, ML_1M, ML_10M, ML_LATEST)

# The file whose presence identifies each format, and every file the format needs. ML-1M and
# ML-10M share ratings.dat and movies.dat; only ML-1M has users.dat (`detect_dataset`).
_MARKER_FILES = {ML_100K: 'u.data', ML_1M: 'ratings.dat', ML_10M: 'ratings.dat',
                 ML_LATEST: 'ratings.csv'}
_REQUIRED_FILES = {
    ML_100K: ('u.data', 'u.item', 'u.user'),
    ML_1M: ('ratings.dat', 'movies.dat', 'users.dat'),
    ML_10M: ('ratings.dat', 'movies.dat'),
    ML_LATEST: ('ratings.csv', 'movies.csv'),
}

# Genre flag order of ML-100K's u.item (the same list as its u.genre file).
ML_100K_GENRES = (
    'unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime',
    'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance',
    'Sci-Fi', 'Thriller', 'War', 'Western')

# ML-1M codes occupations as integers; its README lists the names.
ML_1M_OCCUPATIONS = (
    'other', 'academic/educator', 'artist', 'clerical/admin', 'college/grad student',
    'customer service', 'doctor/health care', 'executive/managerial', 'farmer', 'homemaker',
    'K-12 student', 'lawyer', 'programmer', 'retired', 'sales/marketing', 'scientist',
    'self-employed', 'technician/engineer', 'tradesman/craftsman', 'unemployed', 'writer')
ML_1M_AGE_CODES = (1, 18, 25, 35, 45, 50, 56)

UNKNOWN_YEAR = 0  # release_year written when the dataset gives no date for a movie
_YEAR_IN_TITLE = re.compile(r'\((\d{4})(?:[-–]\d{0,4})?\)\s*$')


class IngestionError(ValueError):
  """Bad input data; the message names the file, the line (when there is one) and the problem.
  `reason` is the problem's kind (one of REASONS), by which skipped rows are counted."""

  def __init__(self, path: str, problem: str, line: Optional[int] = None,
               reason: str = 'bad file'):
    self.path, self.line, self.problem, self.reason = path, line, problem, reason
    where = f'{path}:{line}' if line is not None else path
    super().__init__(f'{where}: {problem}')


# Kinds of bad rows.
WRONG_FIELD_COUNT, NOT_A_NUMBER, RATING_OFF_SCALE = (
    'wrong field count', 'not a number', 'rating off the scale')
UNKNOWN_MOVIE, UNKNOWN_USER, DUPLICATE = 'unknown movie', 'unknown user', 'duplicate'
BAD_ENCODING, BLANK_LINE, BAD_VALUE = 'bad encoding', 'blank line', 'bad value'
NOT_A_NEW_SPAN = 'not in a new span'  # an appended rating no later than the last span
REASONS = (WRONG_FIELD_COUNT, NOT_A_NUMBER, RATING_OFF_SCALE, UNKNOWN_MOVIE, UNKNOWN_USER,
           DUPLICATE, BAD_ENCODING, BLANK_LINE, BAD_VALUE, NOT_A_NEW_SPAN)
FAIL, SKIP = 'fail', 'skip'
POLICIES = (FAIL, SKIP)


@dataclasses.dataclass(frozen=True)
class RejectedRow:
  path: str
  line: int
  reason: str
  problem: str
  text: str


class BadRows:
  """The policy for rows that fail validation: FAIL raises their IngestionError, SKIP keeps
  them in `rejected` (and the reader drops them)."""

  def __init__(self, policy: str = FAIL):
    if policy not in POLICIES:
      raise ValueError(f'unknown bad-row policy {policy!r}; expected one of {POLICIES}')
    self.policy = policy
    self.rejected: List[RejectedRow] = []

  def reject(self, error: IngestionError, text: str) -> None:
    if self.policy == FAIL or error.line is None:
      raise error
    self.rejected.append(RejectedRow(error.path, error.line, error.reason, error.problem, text))

  def counts(self) -> Dict[str, int]:
    """Rejected rows by reason, most frequent first."""
    counts: Dict[str, int] = {}
    for row in self.rejected:
      counts[row.reason] = counts.get(row.reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


@dataclasses.dataclass(frozen=True)
class RatingScale:
  low: float
  high: float
  step: float

  def check(self, value: float) -> Optional[str]:
    """Returns why `value` is not a rating of this scale, or None when it is one."""
    if not self.low <= value <= self.high:
      return f'rating {value:g} is outside the scale {self.low:g}..{self.high:g}'
    steps = (value - self.low) / self.step
    if abs(steps - round(steps)) > 1e-6:
      return f'rating {value:g} is not a multiple of {self.step:g} on the scale {self.low:g}..{self.high:g}'
    return None


RATING_SCALES = {
    ML_100K: RatingScale(1.0, 5.0, 1.0),
    ML_1M: RatingScale(1.0, 5.0, 1.0),
    ML_10M: RatingScale(0.5, 5.0, 0.5),
    ML_LATEST: RatingScale(0.5, 5.0, 0.5),
}
# Whether the format has a users file with age, gender, occupation and zip code.
HAS_DEMOGRAPHICS = {ML_100K: True, ML_1M: True, ML_10M: False, ML_LATEST: False}


@dataclasses.dataclass(frozen=True)
class Movie:
  movie_id: int
  title: str
  release_year: int
  genres: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class User:
  user_id: int
  age: int
  gender: str
  occupation: str
  zip_code: str


@dataclasses.dataclass
class Ratings:
  """Column arrays, one entry per rating, in file order; `line` is the 1-based source line."""
  user_id: np.ndarray
  movie_id: np.ndarray
  rating: np.ndarray
  timestamp: np.ndarray
  line: np.ndarray
  path: str

  def __len__(self) -> int:
    return len(self.user_id)

  def take(self, index) -> 'Ratings':
    return Ratings(self.user_id[index], self.movie_id[index], self.rating[index],
                   self.timestamp[index], self.line[index], self.path)


@dataclasses.dataclass
class MovieLensData:
  dataset: str
  data_dir: str
  scale: RatingScale
  ratings: Ratings
  movies: Dict[int, Movie]
  users: Optional[Dict[int, User]]  # None where the format has no user file (ML-latest)

  @property
  def has_demographics(self) -> bool:
    return self.users is not None


def detect_dataset(data_dir: str) -> str:
  """Names the MovieLens format of the files in `data_dir`."""
  if not os.path.isdir(data_dir):
    raise IngestionError(data_dir, 'is not a folder')
  found = [name for name, marker in _MARKER_FILES.items()
           if os.path.exists(os.path.join(data_dir, marker))]
  if ML_1M in found:  # ratings.dat: ML-1M with its users.dat, ML-10M without
    found.remove(ML_10M if os.path.exists(os.path.join(data_dir, 'users.dat')) else ML_1M)
  if len(found) == 1:
    return found[0]
  if not found:
    named = {m: ' or '.join(d for d in DATASETS if _MARKER_FILES[d] == m)
             for m in _MARKER_FILES.values()}
    markers = ', '.join(f'{m} ({d})' for m, d in named.items())
    raise IngestionError(data_dir, f'unknown format: none of {markers} is there')
  raise IngestionError(data_dir, f'ambiguous format: files of {", ".join(found)} are all there; '
                       'pass --dataset')


def resolve_data_dir(data_dir: str) -> str:
  """Accepts the folder itself or a folder holding one extracted MovieLens archive."""
  if os.path.isdir(data_dir) and not any(
      os.path.exists(os.path.join(data_dir, m)) for m in _MARKER_FILES.values()):
    subdirs = [os.path.join(data_dir, d) for d in sorted(os.listdir(data_dir))
               if os.path.isdir(os.path.join(data_dir, d))]
    inner = [d for d in subdirs
             if any(os.path.exists(os.path.join(d, m)) for m in _MARKER_FILES.values())]
    if len(inner) == 1:
      return inner[0]
  return data_dir


def read_movielens(data_dir: str, dataset: Optional[str] = None,
                   bad_rows: Optional[BadRows] = None) -> MovieLensData:
  """Reads and validates a MovieLens folder; `dataset` defaults to the detected format;
  `bad_rows` (default: fail) decides what a malformed row does."""
  bad = bad_rows or BadRows()
  data_dir = resolve_data_dir(data_dir)
  dataset = dataset or detect_dataset(data_dir)
  movies, users = read_movies_and_users(data_dir, dataset, bad)
  ratings = read_ratings_file(ratings_path(data_dir, dataset), dataset, movies,
                              users, bad)
  return MovieLensData(dataset, data_dir, RATING_SCALES[dataset], ratings, movies, users)


def read_movies_and_users(data_dir: str, dataset: str, bad: BadRows):
  """(movies, users or None) of a MovieLens folder, validated; every required file checked."""
  if dataset not in DATASETS:
    raise IngestionError(data_dir, f'unknown dataset {dataset!r}; expected one of {DATASETS}')
  for name in _REQUIRED_FILES[dataset]:
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
      raise IngestionError(path, f'missing file: the {dataset} format needs '
                           f'{", ".join(_REQUIRED_FILES[dataset])}')
  join = lambda name: os.path.join(data_dir, name)
  if dataset == ML_100K:
    return _read_100k_movies(join('u.item'), bad), _read_100k_users(join('u.user'), bad)
  if dataset == ML_1M:
    return _read_dat_movies(join('movies.dat'), 'latin-1', bad), _read_1m_users(
        join('users.dat'), bad)
  if dataset == ML_10M:  # the first MovieLens release in UTF-8 (its README)
    return _read_dat_movies(join('movies.dat'), 'utf-8', bad), None
  return _read_latest_movies(join('movies.csv'), bad), None


_RATINGS_LAYOUT = {ML_100K: ('\t', False), ML_1M: ('::', False), ML_10M: ('::', False),
                   ML_LATEST: (',', True)}


def ratings_path(data_dir: str, dataset: str) -> str:
  return os.path.join(data_dir, _MARKER_FILES[dataset])


def ratings_layout(dataset: str) -> Tuple[str, bool]:
  """The ratings file's field separator, and whether it starts with a header."""
  return _RATINGS_LAYOUT[dataset]


def first_rating_line(dataset: str) -> int:
  """The line of a ratings file's first rating: 2 under ML-latest's header, else 1."""
  return 2 if _RATINGS_LAYOUT[dataset][1] else 1


def read_ratings_file(path: str, dataset: str, movies: Dict[int, Movie],
                      users: Optional[Dict[int, User]], bad: BadRows) -> Ratings:
  """A ratings file in `dataset`'s format (u.data, ratings.dat or ratings.csv lines),
  validated like the dataset's own."""
  sep, header = _RATINGS_LAYOUT[dataset]
  return read_ratings(path, sep, header, RATING_SCALES[dataset], movies, users, bad)


# ----------------------------------------------------------------------------- low-level reading

def read_lines(path: str, encoding: str, header: Optional[Sequence[str]] = None,
               sep: str = ',', bad: Optional[BadRows] = None) -> Iterator[Tuple[int, str]]:
  """Yields (line number, text) of the non-blank lines; an empty file is an error.

  Decodes line by line so that a bad byte is reported with its line (a blank or undecodable
  line goes to `bad`). With `header`, the first line must be exactly those column names and is
  not yielded.
  """
  seen = {'any line': False}
  with open(path, 'rb') as f:
    yield from decoded_lines(path, encoding, f, 1, header, sep, bad or BadRows(), seen)
  if not seen['any line']:
    raise IngestionError(path, 'empty file')


def decoded_lines(path: str, encoding: str, raw_lines: Iterable[bytes], first: int,
                  header: Optional[Sequence[str]], sep: str, bad: BadRows,
                  seen: Dict[str, bool]) -> Iterator[Tuple[int, str]]:
  """`read_lines` over `raw_lines`, the first of which is line `first`; sets seen['any line']
  at the first line that is not blank."""
  for number, raw in enumerate(raw_lines, start=first):
    try:
      text = raw.decode(encoding).rstrip('\r\n')
    except UnicodeDecodeError as e:
      seen['any line'] = True
      bad.reject(IngestionError(path, f'bytes not valid {encoding} at column {e.start + 1}',
                                number, BAD_ENCODING),
                 raw.decode(encoding, 'replace').rstrip('\r\n'))
      continue
    if number == 1 and header is not None:
      got = [c.strip() for c in text.lstrip('\ufeff').split(sep)]
      if got != list(header):
        raise IngestionError(path, f'expected the header {sep.join(header)!r}, found {text!r}',
                             number)
      seen['any line'] = True
      continue
    if not text.strip():
      bad.reject(IngestionError(path, 'blank line', number, BLANK_LINE), text)
      continue
    seen['any line'] = True
    yield number, text


def split_fields(path: str, number: int, text: str, sep: str, count: int) -> List[str]:
  fields = text.split(sep)
  if len(fields) != count:
    raise IngestionError(path, f'expected {count} fields separated by {sep!r}, found {len(fields)}',
                         number, WRONG_FIELD_COUNT)
  return fields


def _csv_rows(path: str, header: Sequence[str],
              bad: BadRows) -> Iterator[Tuple[int, str, List[str]]]:
  """Yields (line number, text, fields) of a quoted CSV file (ML-latest), checking the header."""
  for number, text in read_lines(path, 'utf-8', header=header, bad=bad):
    row = next(csv.reader(io.StringIO(text)), [])
    if len(row) != len(header):
      bad.reject(IngestionError(
          path, f'expected {len(header)} comma-separated fields, found {len(row)}', number,
          WRONG_FIELD_COUNT), text)
      continue
    yield number, text, row


def parse_int(path: str, number: int, field: str, value: str) -> int:
  try:
    return int(value)
  except ValueError:
    hint = ' (a header line where none belongs?)' if number == 1 else ''
    raise IngestionError(path, f'{field} {value!r} is not an integer{hint}', number,
                         NOT_A_NUMBER) from None


def parse_float(path: str, number: int, field: str, value: str) -> float:
  try:
    result = float(value)
  except ValueError:
    result = float('nan')
  if not np.isfinite(result):
    hint = ' (a header line where none belongs?)' if number == 1 else ''
    raise IngestionError(path, f'{field} {value!r} is not a number{hint}', number, NOT_A_NUMBER)
  return result


def _unique(path: str, number: int, table: dict, key: int, what: str) -> None:
  if key in table:
    raise IngestionError(path, f'duplicate {what} {key}', number, DUPLICATE)


# ----------------------------------------------------------------------------- side files

def _year_from_title(title: str) -> int:
  match = _YEAR_IN_TITLE.search(title)
  return int(match.group(1)) if match else UNKNOWN_YEAR


def _read_100k_movies(path: str, bad: BadRows) -> Dict[int, Movie]:
  movies: Dict[int, Movie] = {}
  n_fields = 5 + len(ML_100K_GENRES)
  for number, text in read_lines(path, 'latin-1', bad=bad):
    try:
      f = split_fields(path, number, text, '|', n_fields)
      movie_id = parse_int(path, number, 'movie id', f[0])
      _unique(path, number, movies, movie_id, 'movie id')
      flags = f[5:]
      if any(flag not in ('0', '1') for flag in flags):
        raise IngestionError(path, f'genre flags must be 0 or 1, found {"|".join(flags)}',
                             number, BAD_VALUE)
      genres = tuple(g for g, flag in zip(ML_100K_GENRES, flags) if flag == '1') or ('unknown',)
      date = f[2].strip()
      year = UNKNOWN_YEAR
      if date:
        year_text = date.rsplit('-', 1)[-1]
        if not (len(year_text) == 4 and year_text.isdigit()):
          raise IngestionError(path, f'release date {date!r} is not of the form DD-Mon-YYYY',
                               number, BAD_VALUE)
        year = int(year_text)
    except IngestionError as e:
      bad.reject(e, text)
      continue
    movies[movie_id] = Movie(movie_id, f[1].strip() or 'unknown', year, genres)
  return movies


def _read_dat_movies(path: str, encoding: str, bad: BadRows) -> Dict[int, Movie]:
  """ML-1M's and ML-10M's movies.dat: MovieID::Title (Year)::Genre|Genre."""
  movies: Dict[int, Movie] = {}
  for number, text in read_lines(path, encoding, bad=bad):
    try:
      f = split_fields(path, number, text, '::', 3)
      movie_id = parse_int(path, number, 'movie id', f[0])
      _unique(path, number, movies, movie_id, 'movie id')
    except IngestionError as e:
      bad.reject(e, text)
      continue
    genres = tuple(g for g in f[2].split('|') if g) or ('unknown',)
    movies[movie_id] = Movie(movie_id, f[1].strip(), _year_from_title(f[1]), genres)
  return movies


def _read_latest_movies(path: str, bad: BadRows) -> Dict[int, Movie]:
  movies: Dict[int, Movie] = {}
  for number, text, (movie_id_text, title, genre_text) in _csv_rows(
      path, ('movieId', 'title', 'genres'), bad):
    try:
      movie_id = parse_int(path, number, 'movie id', movie_id_text)
      _unique(path, number, movies, movie_id, 'movie id')
    except IngestionError as e:
      bad.reject(e, text)
      continue
    genres = tuple(g for g in genre_text.split('|') if g) or ('(no genres listed)',)
    movies[movie_id] = Movie(movie_id, title.strip(), _year_from_title(title), genres)
  return movies


def _check_user(path: str, number: int, age: int, gender: str) -> None:
  if not 0 < age < 130:
    raise IngestionError(path, f'age {age} is not a plausible age', number, BAD_VALUE)
  if gender not in ('M', 'F'):
    raise IngestionError(path, f'gender {gender!r} is not M or F', number, BAD_VALUE)


def _read_100k_users(path: str, bad: BadRows) -> Dict[int, User]:
  users: Dict[int, User] = {}
  for number, text in read_lines(path, 'latin-1', bad=bad):
    try:
      f = split_fields(path, number, text, '|', 5)
      user_id = parse_int(path, number, 'user id', f[0])
      _unique(path, number, users, user_id, 'user id')
      age = parse_int(path, number, 'age', f[1])
      _check_user(path, number, age, f[2])
    except IngestionError as e:
      bad.reject(e, text)
      continue
    users[user_id] = User(user_id, age, f[2], f[3].strip(), f[4].strip())
  return users


def _read_1m_users(path: str, bad: BadRows) -> Dict[int, User]:
  users: Dict[int, User] = {}
  for number, text in read_lines(path, 'latin-1', bad=bad):
    try:
      f = split_fields(path, number, text, '::', 5)
      user_id = parse_int(path, number, 'user id', f[0])
      _unique(path, number, users, user_id, 'user id')
      age = parse_int(path, number, 'age', f[2])
      if age not in ML_1M_AGE_CODES:
        raise IngestionError(path, f'age code {age} is not one of {ML_1M_AGE_CODES}', number,
                             BAD_VALUE)
      _check_user(path, number, age, f[1])
      code = parse_int(path, number, 'occupation', f[3])
      if not 0 <= code < len(ML_1M_OCCUPATIONS):
        raise IngestionError(
            path, f'occupation code {code} is not in 0..{len(ML_1M_OCCUPATIONS) - 1}', number,
            BAD_VALUE)
    except IngestionError as e:
      bad.reject(e, text)
      continue
    users[user_id] = User(user_id, age, f[1], ML_1M_OCCUPATIONS[code], f[4].strip())
  return users


# ----------------------------------------------------------------------------- ratings

# Ratings read and checked at a time (whole lines, about this many bytes). A chunk whose every
# row is clean is parsed by Arrow's CSV reader; any other chunk goes line by line through
# `_parse_rating_lines`, which names each bad row, so the errors and rejected rows are the same
# either way.
CHUNK_BYTES = 4 << 20  # about 200K lines of MovieLens ratings
_RATING_COLUMNS = ('userId', 'movieId', 'rating', 'timestamp')


def read_ratings(path: str, sep: str, header: bool, scale: RatingScale,
                 movies: Dict[int, Movie], users: Optional[Dict[int, User]],
                 bad: Optional[BadRows] = None) -> Ratings:
  """Reads a ratings file (user, movie, rating, timestamp) and checks every row against the
  scale, the movie and user tables, and for duplicate (user, movie) pairs.

  Held in column arrays (36 bytes a rating, no Python object per rating). Ingestion of a
  random, per-user, cold-user or temporal split does not hold them: it streams `rating_chunks`
  through files partitioned by user (components/data/user_partitions.py)."""
  bad = bad or BadRows()
  parts = list(rating_chunks(path, sep, header, scale, movies, users, bad))
  columns = []
  for dtype in _COLUMN_TYPES:  # a column at a time, each chunk's copy freed once joined
    columns.append(np.concatenate([part.pop(0) for part in parts]) if parts else
                   np.zeros(0, dtype))
  ratings = without_duplicates(Ratings(*columns, path), bad, rating_encoding(header))
  if not len(ratings):
    raise no_ratings_left(path, bad)
  return ratings


def rating_encoding(header: bool) -> str:
  """ML-latest's files (with a header) are UTF-8; ML-100K's and ML-1M's Latin-1. (ML-10M's
  ratings.dat, UTF-8 by its README, holds nothing but ASCII numbers and separators, which read
  the same in both.)"""
  return 'utf-8' if header else 'latin-1'


def no_ratings_left(path: str, bad: BadRows) -> IngestionError:
  return IngestionError(path, f'no ratings left: all {len(bad.rejected)} rejected rows are '
                        'listed with their reasons')


def rating_chunks(path: str, sep: str, header: bool, scale: RatingScale,
                  movies: Dict[int, Movie], users: Optional[Dict[int, User]],
                  bad: BadRows) -> Iterator[List[np.ndarray]]:
  """The valid ratings of a file as the five columns of Ratings, a chunk of about CHUNK_BYTES
  at a time, in file order; every bad row goes to `bad` with its line (not yet the duplicate
  pairs, which need every chunk: `without_duplicates`)."""
  encoding = rating_encoding(header)
  known = _KnownIds(movies, users)
  seen = {'any line': False}
  with open(path, 'rb') as f:
    first = 1
    if header:
      for _ in decoded_lines(path, encoding, [f.readline()] if f.peek(1) else [], 1,
                             _RATING_COLUMNS, sep, bad, seen):
        pass
      first = 2
    while True:
      lines = f.readlines(CHUNK_BYTES)
      if not lines:
        break
      part = _parse_clean_chunk(lines, first, sep, encoding, scale, known)
      if part is None:
        part = _parse_rating_lines(
            path, decoded_lines(path, encoding, lines, first, None, sep, bad, seen), sep,
            scale, movies, users, bad)
      else:
        seen['any line'] = True
      yield part
      first += len(lines)
  if not seen['any line']:
    raise IngestionError(path, 'empty file')


_COLUMN_TYPES = (np.int64, np.int64, np.float32, np.int64, np.int64)  # Ratings' columns


class _KnownIds:
  """The movie and user ids a rating may name, as sorted arrays for vectorized look-ups."""

  def __init__(self, movies: Dict[int, Movie], users: Optional[Dict[int, User]]):
    self.movies = np.sort(np.fromiter(movies, np.int64, len(movies)))
    self.users = None if users is None else np.sort(np.fromiter(users, np.int64, len(users)))

  @staticmethod
  def _all_in(values: np.ndarray, known: np.ndarray) -> bool:
    where = np.searchsorted(known, values)
    return bool(len(known)) and bool(
        (known[np.minimum(where, len(known) - 1)] == values).all())

  def all_known(self, movie_ids: np.ndarray, user_ids: np.ndarray) -> bool:
    return self._all_in(movie_ids, self.movies) and (
        self.users is None or self._all_in(user_ids, self.users))


_ARROW_COLUMNS = ('user', 'movie', 'rating', 'timestamp')
_NUMBER_BYTES = b'0123456789.+-eE'


def _parse_clean_chunk(lines: List[bytes], first: int, sep: str, encoding: str,
                       scale: RatingScale, known: _KnownIds):
  """The chunk's five columns, parsed by Arrow's CSV reader, if every line is a plain valid
  rating: nothing but digits, signs, points and exponents between the separators, four fields
  that Arrow reads as integers and a finite number, the rating on the scale, known ids. None
  otherwise (a blank line, another field count, a value Arrow does not read, ...): the chunk is
  then read line by line, which names each bad row. On such text Arrow's integers and numbers
  are those int() and float() give (tests/data/test_movielens_formats.py tries the odd
  spellings)."""
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  from pyarrow import csv as arrow_csv  # pylint: disable=import-outside-toplevel
  data = b''.join(lines)
  if data.translate(None, _NUMBER_BYTES + sep.encode() + b'\n'):
    return None  # a byte no plain number has ('0x10' is 16 to Arrow, an error to int())
  if len(sep) > 1:  # ML-1M's '::'
    if b'\t' in data:
      return None
    data = data.replace(sep.encode(), b'\t')
  try:
    table = arrow_csv.read_csv(
        pa.py_buffer(data),
        read_options=arrow_csv.ReadOptions(column_names=list(_ARROW_COLUMNS),
                                           use_threads=False),
        parse_options=arrow_csv.ParseOptions(delimiter='\t' if len(sep) > 1 else sep,
                                             quote_char=False, ignore_empty_lines=False),
        convert_options=arrow_csv.ConvertOptions(
            column_types={'user': pa.int64(), 'movie': pa.int64(), 'rating': pa.float64(),
                          'timestamp': pa.int64()},
            null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False))
  except (pa.ArrowInvalid, pa.ArrowTypeError):
    return None
  if table.num_rows != len(lines) or any(table.column(c).null_count for c in _ARROW_COLUMNS):
    return None
  user_ids, movie_ids, ratings, timestamps = (table.column(c).to_numpy() for c in _ARROW_COLUMNS)
  steps = (ratings - scale.low) / scale.step
  if not (np.isfinite(ratings).all() and (ratings >= scale.low).all()
          and (ratings <= scale.high).all() and (np.abs(steps - np.round(steps)) <= 1e-6).all()
          and known.all_known(movie_ids, user_ids)):
    return None
  return [user_ids.astype(np.int64), movie_ids.astype(np.int64), ratings.astype(np.float32),
          timestamps.astype(np.int64), np.arange(first, first + len(lines), dtype=np.int64)]


def _parse_rating_lines(path: str, rows, sep: str, scale: RatingScale,
                        movies: Dict[int, Movie], users: Optional[Dict[int, User]],
                        bad: BadRows):
  """The five columns of (line number, text) rows, each checked alone: a bad row goes to `bad`
  with its line and problem."""
  user_ids, movie_ids, values, times, line_numbers = [], [], [], [], []
  for number, text in rows:
    try:
      f = split_fields(path, number, text, sep, 4)
      user_id = parse_int(path, number, 'user id', f[0])
      movie_id = parse_int(path, number, 'movie id', f[1])
      rating = parse_float(path, number, 'rating', f[2])
      timestamp = parse_int(path, number, 'timestamp', f[3])
      problem = scale.check(rating)
      if problem:
        raise IngestionError(path, problem, number, RATING_OFF_SCALE)
      if movie_id not in movies:
        raise IngestionError(path, f'unknown movie id {movie_id} (not in the movies file)',
                             number, UNKNOWN_MOVIE)
      if users is not None and user_id not in users:
        raise IngestionError(path, f'unknown user id {user_id} (not in the users file)', number,
                             UNKNOWN_USER)
    except IngestionError as e:
      bad.reject(e, text)
      continue
    user_ids.append(user_id)
    movie_ids.append(movie_id)
    values.append(rating)
    times.append(timestamp)
    line_numbers.append(number)
  return [np.asarray(column, dtype) for column, dtype in
          zip((user_ids, movie_ids, values, times, line_numbers), _COLUMN_TYPES)]


def without_duplicates(ratings: Ratings, bad: Optional[BadRows] = None,
                       encoding: str = 'utf-8') -> Ratings:
  """The ratings without repeated (user, movie) pairs: each repeat is a bad row (naming the
  line of the pair's first rating); under SKIP the first rating of each pair is kept."""
  bad = bad or BadRows()
  keys = ratings.user_id * (int(ratings.movie_id.max(initial=0)) + 1) + ratings.movie_id
  in_order = np.sort(keys)  # the common case, no repeat, found without an argsort
  if not (in_order[1:] == in_order[:-1]).any():
    return ratings
  del in_order
  order = np.argsort(keys, kind='stable')  # file order within a pair
  repeat = np.zeros(len(ratings), bool)
  repeat[order[1:]] = keys[order][1:] == keys[order][:-1]
  if not repeat.any():
    return ratings
  first_line = {}
  for row in order:
    first_line.setdefault(int(keys[row]), int(ratings.line[row]))
  rows = np.nonzero(repeat)[0]
  reject_repeats(ratings.path, encoding, bad, ratings.line[rows], ratings.movie_id[rows],
                 ratings.user_id[rows],
                 np.fromiter((first_line[int(k)] for k in keys[rows]), np.int64, len(rows)))
  return ratings.take(~repeat)


def reject_repeats(path: str, encoding: str, bad: BadRows, lines: np.ndarray,
                   movie_ids: np.ndarray, user_ids: np.ndarray, first_lines: np.ndarray) -> None:
  """Rejects the repeated ratings of (user, movie) pairs on `lines`, whose pairs were first
  rated on `first_lines`, in file order: under FAIL the repeat earliest in the file is the
  error."""
  order = np.argsort(lines, kind='stable')
  texts = texts_of_lines(path, encoding, set(lines.tolist())) if bad.policy == SKIP else {}
  for row in order:
    line = int(lines[row])
    bad.reject(IngestionError(
        path, f'duplicate rating of movie {movie_ids[row]} by user {user_ids[row]} '
        f'(first rated on line {first_lines[row]})', line, DUPLICATE), texts.get(line, ''))


def texts_of_lines(path: str, encoding: str, numbers) -> Dict[int, str]:
  """The text of the given (1-based) lines of a file that was read before."""
  texts = {}
  with open(path, 'rb') as f:
    for number, raw in enumerate(f, start=1):
      if number in numbers:
        texts[number] = raw.decode(encoding, 'replace').rstrip('\r\n')
  return texts
