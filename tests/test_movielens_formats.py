"""Parsers of the three MovieLens formats, and every bad-input error they must give."""

import os
import re

import numpy as np
import pytest

from components import movielens_formats as formats
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
