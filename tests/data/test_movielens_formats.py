"""Parsers of the four MovieLens formats, and every bad-input error they must give."""

import os
import re

import numpy as np
import pytest

from components.data import movielens_formats as formats
from tests import movielens_fixtures as fx


def test_reads_ml100k(tmp_path):
  data = formats.read_movielens(fx.ml100k(tmp_path))
  assert data.dataset == formats.ML_100K
  assert len(data.ratings) == 10
  assert data.ratings.user_id.tolist()[:3] == [1, 1, 2]
  assert data.ratings.rating.dtype == np.float32
  assert data.ratings.line.tolist() == list(range(1, 11))
  assert data.movies[2].genres == ('Action', 'Sci-Fi')
  assert data.movies[3].title == 'Caf\xe9 au Lait (1994)'  # latin-1 decoded
  assert data.movies[4].release_year == formats.UNKNOWN_YEAR
  assert data.movies[4].genres == ('unknown',)
  assert data.users[2].zip_code == '01002'  # leading zero kept
  assert data.users[3].zip_code == 'T8H1N'
  assert data.has_demographics


def test_reads_ml1m(tmp_path):
  data = formats.read_movielens(fx.ml1m(tmp_path))
  assert data.dataset == formats.ML_1M
  assert data.movies[30].title == 'Heat: The Remake (1995)'
  assert data.movies[30].release_year == 1995
  assert data.users[1].occupation == 'K-12 student'  # code 10
  assert data.users[2].age == 56
  assert data.scale == formats.RatingScale(1.0, 5.0, 1.0)


def test_reads_ml_latest_without_demographics(tmp_path):
  data = formats.read_movielens(fx.ml_latest(tmp_path))
  assert data.dataset == formats.ML_LATEST
  assert data.users is None and not data.has_demographics
  assert data.ratings.rating.tolist() == [4.0, 4.5, 0.5, 3.0]
  assert data.movies[2].title == 'American President, The (1995)'
  assert data.movies[3].title.startswith('Amélie')
  assert data.movies[3].release_year == 2001
  assert data.movies[3].genres == ('(no genres listed)',)


def test_reads_ml10m_without_demographics(tmp_path):
  data = formats.read_movielens(fx.ml10m(tmp_path))
  assert data.dataset == formats.ML_10M  # ratings.dat without users.dat
  assert data.users is None and not data.has_demographics
  assert data.scale == formats.RatingScale(0.5, 5.0, 0.5)
  assert data.ratings.rating.tolist() == [5.0, 3.5, 0.5, 4.0]
  assert data.movies[10].title == 'Misérables, Les (1995)'  # UTF-8 decoded
  assert data.movies[10].release_year == 1995
  assert data.movies[20].genres == ('(no genres listed)',)
  assert data.movies[30].genres == ('Action', 'Crime', 'Drama', 'IMAX')


def test_ml10m_movies_dat_must_be_utf8(tmp_path):
  folder = fx.ml10m(tmp_path)
  fx.write(os.path.join(folder, 'movies.dat'), fx.ML_10M_MOVIES, encoding='latin-1')
  with pytest.raises(formats.IngestionError,
                     match=r"movies\.dat:1: bytes not valid utf-8 at column 8"):
    formats.read_movielens(folder)


def test_ml10m_ratings_are_half_stars_up_to_5(tmp_path):
  folder = fx.ml10m(tmp_path)
  fx.write(os.path.join(folder, 'ratings.dat'), ['1::10::5::838985046', '1::20::5.5::838983525'])
  with pytest.raises(formats.IngestionError,
                     match=r'ratings\.dat:2: rating 5\.5 is outside the scale 0\.5\.\.5'):
    formats.read_movielens(folder)


def test_ml1m_named_on_an_ml10m_folder_asks_for_users_dat(tmp_path):
  with pytest.raises(formats.IngestionError, match=r'users\.dat: missing file: the ml-1m format'):
    formats.read_movielens(fx.ml10m(tmp_path), formats.ML_1M)


def test_detects_a_folder_holding_one_extracted_archive(tmp_path):
  fx.ml100k(tmp_path / 'ml-100k')
  assert formats.read_movielens(str(tmp_path)).dataset == formats.ML_100K


def test_explicit_dataset_must_match_the_files(tmp_path):
  with pytest.raises(formats.IngestionError, match=r'ratings\.dat: missing file'):
    formats.read_movielens(fx.ml100k(tmp_path), formats.ML_1M)


def test_reads_the_real_ml100k(ml100k_dir):
  data = formats.read_movielens(ml100k_dir)
  assert len(data.ratings) == 100_000
  assert len(data.movies) == 1682 and len(data.users) == 943


def _error(tmp_path, **files):
  """Builds an ML-100K folder with some files replaced, returns the ingestion error."""
  folder = fx.ml100k(tmp_path, **files)
  with pytest.raises(formats.IngestionError) as info:
    formats.read_movielens(folder)
  return info.value


@pytest.mark.parametrize('ratings, line, message', [
    (fx.ML_100K_RATINGS[:2] + ['1\t3\t4'], 3, r"expected 4 fields separated by '\\t', found 3"),
    (fx.ML_100K_RATINGS[:2] + ['1\t3\t4\t5\t6'], 3, 'expected 4 fields'),
    (fx.ML_100K_RATINGS[:4] + ['1\t3\tfive\t881250949'], 5, "rating 'five' is not a number"),
    (fx.ML_100K_RATINGS[:1] + ['1\t3\tnan\t881250949'], 2, "rating 'nan' is not a number"),
    (fx.ML_100K_RATINGS[:1] + ['1\t3\t6\t881250949'], 2, r'rating 6 is outside the scale 1\.\.5'),
    (fx.ML_100K_RATINGS[:1] + ['1\t3\t0\t881250949'], 2, 'outside the scale'),
    (fx.ML_100K_RATINGS[:1] + ['1\t3\t3.5\t881250949'], 2, 'not a multiple of 1'),
    (fx.ML_100K_RATINGS[:3] + ['1\t99\t3\t881250949'], 4, 'unknown movie id 99'),
    (fx.ML_100K_RATINGS[:3] + ['77\t1\t3\t881250949'], 4, 'unknown user id 77'),
    (fx.ML_100K_RATINGS[:3] + ['1\t2\t4\t881250999'], 4,
     r'duplicate rating of movie 2 by user 1 \(first rated on line 2\)'),
    (['user\titem\trating\ttime'] + fx.ML_100K_RATINGS, 1, 'a header line where none belongs'),
    (fx.ML_100K_RATINGS[:2] + ['', fx.ML_100K_RATINGS[3]], 3, 'blank line'),
    (fx.ML_100K_RATINGS[:2] + ['x\t1\t3\t881250949'], 3, "user id 'x' is not an integer"),
])
def test_bad_ratings_name_file_line_and_problem(tmp_path, ratings, line, message):
  error = _error(tmp_path, ratings=ratings)
  assert error.path == os.path.join(str(tmp_path), 'u.data')
  assert error.line == line
  assert str(error).startswith(f'{error.path}:{line}: ')
  assert re.search(message, str(error)), str(error)


# The bad-data table under --on-bad-rows skip: (files replaced, expected rejections as
# (file, line, reason), ratings kept). Under fail each of these stops at its first rejection.
R = fx.ML_100K_RATINGS
SKIP_TABLE = {
    'wrong field count': (dict(ratings=R[:2] + ['1\t3\t4'] + R[3:]),
                          [('u.data', 3, formats.WRONG_FIELD_COUNT)], 9),
    'non-numeric rating': (dict(ratings=R[:4] + ['1\t3\tfive\t881250949'] + R[5:]),
                           [('u.data', 5, formats.NOT_A_NUMBER)], 9),
    'rating off the scale': (dict(ratings=R[:1] + ['1\t3\t6\t881250949'] + R[2:]),
                             [('u.data', 2, formats.RATING_OFF_SCALE)], 9),
    'unknown movie id': (dict(ratings=R + ['1\t99\t3\t881250949']),
                         [('u.data', 11, formats.UNKNOWN_MOVIE)], 10),
    'duplicate (user, movie)': (dict(ratings=R + ['1\t2\t4\t881250999', '1\t2\t1\t1']),
                                [('u.data', 11, formats.DUPLICATE),
                                 ('u.data', 12, formats.DUPLICATE)], 10),
    'header where none belongs': (dict(ratings=['user\titem\trating\ttime'] + R),
                                  [('u.data', 1, formats.NOT_A_NUMBER)], 10),
    'blank line': (dict(ratings=R[:2] + [''] + R[2:]), [('u.data', 3, formats.BLANK_LINE)], 10),
    # A bad movie row is rejected, and so are the ratings of that movie (2 of them).
    'bad movie row': (dict(items=fx.ML_100K_ITEMS[:3] + ['4|unknown|x|||0|0']),
                      [('u.item', 4, formats.WRONG_FIELD_COUNT),
                       ('u.data', 6, formats.UNKNOWN_MOVIE)], 9),
    'bad user row': (dict(users=fx.ML_100K_USERS[:2] + ['3|230|M|writer|T8H1N']),
                     [('u.user', 3, formats.BAD_VALUE)] + [
                         ('u.data', line, formats.UNKNOWN_USER) for line in (5, 6, 9, 10)], 6),
}


@pytest.mark.parametrize('case', sorted(SKIP_TABLE))
def test_bad_rows_are_skipped_counted_and_named(tmp_path, case):
  files, expected, kept = SKIP_TABLE[case]
  folder = fx.ml100k(tmp_path, **files)
  with pytest.raises(formats.IngestionError) as info:  # fail: stops at the first one
    formats.read_movielens(folder)
  first = expected[0]
  assert (os.path.basename(info.value.path), info.value.line, info.value.reason) == first
  bad = formats.BadRows(formats.SKIP)
  data = formats.read_movielens(folder, bad_rows=bad)
  assert [(os.path.basename(r.path), r.line, r.reason) for r in bad.rejected] == expected
  assert len(data.ratings) == kept
  # No row disappears without being counted: kept + rejected ratings = ratings in the file.
  with open(os.path.join(folder, 'u.data'), encoding='latin-1') as f:
    lines = [line for line in f.read().split('\n') if line]
  blank = sum(r.reason == formats.BLANK_LINE for r in bad.rejected)
  rejected_ratings = sum(os.path.basename(r.path) == 'u.data' for r in bad.rejected) - blank
  assert kept + rejected_ratings == len(lines)
  for row in bad.rejected:  # each rejection carries the row's own text
    if row.reason != formats.BLANK_LINE:
      assert row.text and row.text in open(row.path, encoding='latin-1').read()
  assert sum(bad.counts().values()) == len(expected)


def test_skip_keeps_the_first_rating_of_a_duplicate_pair(tmp_path):
  folder = fx.ml100k(tmp_path, ratings=fx.ML_100K_RATINGS + ['1\t2\t1\t881250999'])
  bad = formats.BadRows(formats.SKIP)
  data = formats.read_movielens(folder, bad_rows=bad)
  row = np.nonzero((data.ratings.user_id == 1) & (data.ratings.movie_id == 2))[0]
  assert data.ratings.rating[row].tolist() == [3.0] and data.ratings.line[row].tolist() == [2]
  assert bad.rejected[0].problem == 'duplicate rating of movie 2 by user 1 (first rated on line 2)'
  assert bad.rejected[0].text == '1\t2\t1\t881250999'


def test_non_utf8_title_bytes(tmp_path):
  """ML-100K is Latin-1 (any byte is a character); ML-latest is UTF-8, where a bad byte
  rejects its movie row (and that movie's ratings) under skip and stops ingestion under fail."""
  folder = fx.ml100k(tmp_path / '100k', items=[fx.ML_100K_ITEMS[0].replace('Toy', 'T\xf6y')]
                     + fx.ML_100K_ITEMS[1:])
  assert formats.read_movielens(folder).movies[1].title == 'T\xf6y Story (1995)'
  folder = fx.ml_latest(tmp_path / 'latest')
  path = os.path.join(folder, 'movies.csv')
  with open(path, 'rb') as f:
    raw = f.read().replace(b'Toy', b'T\xf6y')
  with open(path, 'wb') as f:
    f.write(raw)
  with pytest.raises(formats.IngestionError, match=r'movies\.csv:2: bytes not valid utf-8'):
    formats.read_movielens(folder)
  bad = formats.BadRows(formats.SKIP)
  data = formats.read_movielens(folder, bad_rows=bad)
  assert [(os.path.basename(r.path), r.line, r.reason) for r in bad.rejected] == [
      ('movies.csv', 2, formats.BAD_ENCODING), ('ratings.csv', 2, formats.UNKNOWN_MOVIE),
      ('ratings.csv', 4, formats.UNKNOWN_MOVIE)]
  assert sorted(data.movies) == [2, 3] and len(data.ratings) == 2


def test_whole_file_problems_stop_under_skip_too(tmp_path):
  bad = lambda: formats.BadRows(formats.SKIP)
  with pytest.raises(formats.IngestionError, match='empty file'):
    formats.read_movielens(fx.ml100k(tmp_path / 'a', ratings=[]), bad_rows=bad())
  folder = fx.ml100k(tmp_path / 'b')
  os.remove(os.path.join(folder, 'u.item'))
  with pytest.raises(formats.IngestionError, match='missing file'):
    formats.read_movielens(folder, bad_rows=bad())
  with pytest.raises(formats.IngestionError, match='no ratings left'):
    formats.read_movielens(fx.ml100k(tmp_path / 'c', ratings=['1\t99\t3\t1']), bad_rows=bad())
  with pytest.raises(ValueError, match='unknown bad-row policy'):
    formats.BadRows('ignore')


def test_empty_ratings_file(tmp_path):
  error = _error(tmp_path, ratings=[])
  assert str(error) == f'{tmp_path}/u.data: empty file'


def test_missing_side_file(tmp_path):
  folder = fx.ml100k(tmp_path)
  os.remove(os.path.join(folder, 'u.item'))
  with pytest.raises(formats.IngestionError, match=r'u\.item: missing file'):
    formats.read_movielens(folder)


def test_unknown_format(tmp_path):
  fx.write(os.path.join(tmp_path, 'notes.txt'), ['hello'])
  with pytest.raises(formats.IngestionError, match='unknown format: none of u.data'):
    formats.read_movielens(str(tmp_path))


def test_bad_movie_row(tmp_path):
  items = fx.ML_100K_ITEMS[:2] + ['3|Short row|01-Jan-1994']
  error = _error(tmp_path, items=items)
  assert (error.path, error.line) == (os.path.join(str(tmp_path), 'u.item'), 3)
  assert 'expected 24 fields' in str(error)


def test_bad_user_row(tmp_path):
  error = _error(tmp_path, users=['1|24|M|technician|85711', '2|fifty|F|other|01002'])
  assert (os.path.basename(error.path), error.line) == ('u.user', 2)
  assert "age 'fifty' is not an integer" in str(error)


def test_ml_latest_half_stars_and_header(tmp_path):
  folder = fx.ml_latest(tmp_path)
  fx.write(os.path.join(folder, 'ratings.csv'),
           ['userId,movieId,rating,timestamp', '1,1,4.25,964982703'], encoding='utf-8')
  with pytest.raises(formats.IngestionError, match=r'ratings\.csv:2: rating 4\.25 is not a '
                     r'multiple of 0\.5'):
    formats.read_movielens(folder)
  fx.write(os.path.join(folder, 'ratings.csv'), ['1,1,4.0,964982703'], encoding='utf-8')
  with pytest.raises(formats.IngestionError, match=r'ratings\.csv:1: expected the header'):
    formats.read_movielens(folder)


def test_ml_latest_rejects_bytes_that_are_not_utf8(tmp_path):
  folder = fx.ml_latest(tmp_path)
  with open(os.path.join(folder, 'movies.csv'), 'ab') as f:
    f.write(b'4,Caf\xe9 (1999),Drama\n')
  with pytest.raises(formats.IngestionError, match=r'movies\.csv:5: bytes not valid utf-8'):
    formats.read_movielens(folder)


def test_ml1m_bad_age_code(tmp_path):
  folder = fx.ml1m(tmp_path)
  fx.write(os.path.join(folder, 'users.dat'), ['1::F::1::10::48067', '2::M::30::16::70072'])
  with pytest.raises(formats.IngestionError, match=r'users\.dat:2: age code 30'):
    formats.read_movielens(folder)


def _read_both_ways(monkeypatch, folder, policy, chunk_bytes):
  """(ratings, rejected rows) read in chunks of `chunk_bytes` with the numpy path for clean
  chunks, and again with every chunk read line by line (the reference)."""
  monkeypatch.setattr(formats, 'CHUNK_BYTES', chunk_bytes)
  results = []
  for numpy_path in (True, False):
    if not numpy_path:
      monkeypatch.setattr(formats, '_parse_clean_chunk', lambda *args: None)
    bad = formats.BadRows(policy)
    ratings = formats.read_movielens(folder, bad_rows=bad).ratings
    results.append((ratings, bad.rejected))
  return results


def _assert_same(first, second):
  (a, a_rejected), (b, b_rejected) = first, second
  for column in ('user_id', 'movie_id', 'rating', 'timestamp', 'line'):
    assert getattr(a, column).dtype == getattr(b, column).dtype
    np.testing.assert_array_equal(getattr(a, column), getattr(b, column))
  assert a_rejected == b_rejected


def test_clean_chunks_parse_as_the_line_by_line_reader_does_on_real_ml100k(
    ml100k_dir, monkeypatch):
  fast, reference = _read_both_ways(monkeypatch, ml100k_dir, formats.FAIL, 64 << 10)
  assert len(fast[0]) == 100_000
  _assert_same(fast, reference)


@pytest.mark.parametrize('dataset', ['ml-100k', 'ml-latest'])
def test_chunks_with_bad_rows_among_clean_ones_give_the_same_rows_and_rejections(
    tmp_path, monkeypatch, dataset):
  """Many chunks, a few with a bad row of some kind (read line by line), the rest clean
  (parsed by numpy): the same ratings, line numbers and rejected rows as line by line."""
  if dataset == 'ml-100k':
    folder, sep, name, encoding, header = fx.ml100k(tmp_path), '\t', 'u.data', 'latin-1', []
    rating = lambda i: str(1 + i % 5)
  else:
    folder, sep, name, encoding = fx.ml_latest(tmp_path), ',', 'ratings.csv', 'utf-8'
    header, rating = ['userId,movieId,rating,timestamp'], lambda i: f'{0.5 + (i % 10) / 2:.1f}'
  # Users 1-3 and movies 1-3 are in both fixtures' side files: 9 distinct pairs, so most rows
  # are duplicates, rejected under skip like any other bad row.
  lines = [sep.join([str(1 + i % 3), str(1 + (i // 3) % 3), rating(i), str(880000000 + i)])
           for i in range(3000)]
  for number, text in {150: 'x' + lines[150], 900: '', 1700: lines[1700] + sep + '9',
                       2222: lines[2222].replace(sep, sep * 2, 1), 2500: '1' + sep + '99' +
                       sep + '3' + sep + '1'}.items():
    lines[number] = text
  fx.write(os.path.join(folder, name), header + lines, encoding)
  clean = []
  parse = formats._parse_clean_chunk
  monkeypatch.setattr(formats, '_parse_clean_chunk',
                      lambda *args: clean.append(parse(*args) is not None) or parse(*args))
  fast, reference = _read_both_ways(monkeypatch, folder, formats.SKIP, 2 << 10)
  _assert_same(fast, reference)
  assert 0 < sum(clean) < len(clean)  # both paths were taken
  assert len(fast[0]) == 9 and len(fast[0]) + len(fast[1]) == len(lines)


EDGE_VALUES = ['+1', '01', '1.', '.5', '4e0', '4E0', '1e400', 'inf', '-inf', 'nan', 'NaN',
               '1_0', ' 4', '4 ', '0x10', '-0', '4.0000000001', '2.5000000000000001', '',
               '99999999999999999999']


def _read_or_error(folder):
  bad = formats.BadRows(formats.SKIP)
  try:
    ratings = formats.read_movielens(folder, bad_rows=bad).ratings
  except (formats.IngestionError, OverflowError) as error:
    return type(error).__name__
  return ([getattr(ratings, c).tolist() for c in ('user_id', 'movie_id', 'rating', 'timestamp',
                                                  'line')], bad.rejected)


@pytest.mark.parametrize('column', [0, 2, 3])
def test_values_at_the_edge_of_the_number_syntax_read_as_line_by_line(
    tmp_path, monkeypatch, column):
  """Each odd spelling of a number in an id, rating or timestamp column: a clean chunk read by
  Arrow gives what int() and float() give line by line (or the chunk goes line by line)."""
  folder = fx.ml_latest(tmp_path)
  parse = formats._parse_clean_chunk
  for value in EDGE_VALUES:
    fields = ['1', '1', '4.0', '964982703']
    fields[column] = value
    fx.write(os.path.join(folder, 'ratings.csv'),
             ['userId,movieId,rating,timestamp', ','.join(fields), '5,1,3.0,964982703'], 'utf-8')
    monkeypatch.setattr(formats, '_parse_clean_chunk', parse)
    fast = _read_or_error(folder)
    monkeypatch.setattr(formats, '_parse_clean_chunk', lambda *args: None)
    assert fast == _read_or_error(folder), value
