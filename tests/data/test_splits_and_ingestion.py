"""Split strategies and the prepared CSV input splits."""

import csv
import os

import numpy as np
import pytest

from components.data import features
from components.data import ingestion
from components.data import movielens_formats as formats
from components.data import movielens_splits as splits
from tests import movielens_fixtures as fx


def _data(tmp_path):
  return formats.read_movielens(fx.ml100k(tmp_path / 'src'))


def test_random_split_is_seeded_and_sized(tmp_path):
  data = _data(tmp_path)
  a = splits.eval_mask(data, data.ratings, splits.RANDOM, 0.2, seed=1)
  b = splits.eval_mask(data, data.ratings, splits.RANDOM, 0.2, seed=1)
  assert a.sum() == 2 and (a == b).all()
  others = [splits.eval_mask(data, data.ratings, splits.RANDOM, 0.2, seed=s) for s in range(2, 6)]
  assert any((other != a).any() for other in others)


def test_temporal_split_evaluates_the_latest_ratings(tmp_path):
  data = _data(tmp_path)
  mask = splits.eval_mask(data, data.ratings, splits.TEMPORAL, 0.3)
  cutoff = data.ratings.timestamp[mask].min()
  assert mask.sum() == 3
  assert (data.ratings.timestamp[~mask] <= cutoff).all()


def test_canonical_fold_uses_the_published_files(tmp_path):
  folder = fx.ml100k(tmp_path / 'src')
  fx.write(os.path.join(folder, 'u1.test'), fx.ML_100K_RATINGS[2:4])
  fx.write(os.path.join(folder, 'u1.base'), fx.ML_100K_RATINGS[:2] + fx.ML_100K_RATINGS[4:])
  data = formats.read_movielens(folder)
  mask = splits.eval_mask(data, data.ratings, 'canonical:u1')
  assert mask.tolist() == [False, False, True, True] + [False] * 6


def test_canonical_fold_errors(tmp_path):
  folder = fx.ml100k(tmp_path / 'src')
  data = formats.read_movielens(folder)
  with pytest.raises(formats.IngestionError, match=r'u2\.base: missing file'):
    splits.eval_mask(data, data.ratings, 'canonical:u2')
  fx.write(os.path.join(folder, 'u2.base'), fx.ML_100K_RATINGS)
  fx.write(os.path.join(folder, 'u2.test'), ['1\t4\t5\t881250949'])
  with pytest.raises(formats.IngestionError, match=r'u2\.test:1: rating not found in u\.data'):
    splits.eval_mask(data, data.ratings, 'canonical:u2')
  latest = formats.read_movielens(fx.ml_latest(tmp_path / 'latest'))
  with pytest.raises(ValueError, match='has none'):
    splits.eval_mask(latest, latest.ratings, 'canonical:u1')


def test_canonical_u1_on_real_data(ml100k_dir):
  data = formats.read_movielens(ml100k_dir)
  mask = splits.eval_mask(data, data.ratings, 'canonical:u1')
  assert mask.sum() == 20_000  # u1.test has 20,000 ratings


def test_per_user_split_holds_out_a_share_of_each_user(ml100k_dir):
  data = formats.read_movielens(ml100k_dir)
  mask = splits.eval_mask(data, data.ratings, splits.PER_USER, 0.25, seed=42)
  assert (mask == splits.eval_mask(data, data.ratings, splits.PER_USER, 0.25, seed=42)).all()
  assert (mask != splits.eval_mask(data, data.ratings, splits.PER_USER, 0.25, seed=7)).any()
  users = data.ratings.user_id
  for user in (1, 13, 405, 943):
    own = users == user
    assert mask[own].sum() == own.sum() - int(own.sum() * 0.75 + 0.5)


def test_cold_users_split_holds_out_whole_users(ml100k_dir):
  data = formats.read_movielens(ml100k_dir)
  mask = splits.eval_mask(data, data.ratings, splits.COLD_USERS, 0.1, seed=42)
  cold = set(data.ratings.user_id[mask].tolist())
  assert len(cold) == 94  # 10% of 943 users
  assert not cold & set(data.ratings.user_id[~mask].tolist())


def _read(path):
  with open(path, encoding='utf-8', newline='') as f:
    return list(csv.DictReader(f))


def test_prepare_examples_joins_and_splits(tmp_path):
  options = ingestion.IngestionOptions(data_dir=fx.ml100k(tmp_path / 'src'), seed=3)
  prepared = ingestion.prepare_examples(options, str(tmp_path / 'out'))
  train = _read(os.path.join(prepared.input_base, 'train', 'ratings.csv'))
  evaluation = _read(os.path.join(prepared.input_base, 'eval', 'ratings.csv'))
  assert len(train) == 8 and len(evaluation) == 2
  assert list(train[0]) == features.raw_columns(True)
  rows = {(r['user_id'], r['movie_id']): r for r in train + evaluation}
  assert len(rows) == 10
  row = rows[('2', '3')]
  assert row == {'user_id': '2', 'movie_id': '3', 'rating': '2.0', 'timestamp': '881250952',
                 'age': '53', 'gender': 'F', 'occupation': 'other', 'zip_code': '01002',
                 'title': 'Caf\xe9 au Lait (1994)', 'release_year': '1994', 'genres': 'Drama'}
  assert rows[('1', '2')]['genres'] == 'Action|Sci-Fi'
  assert prepared.info['num_ratings'] == {'train': 8, 'eval': 2}
  catalogue = _read(prepared.catalogue_path)
  assert [m['movie_id'] for m in catalogue] == ['1', '2', '3', '4']


def test_prepare_examples_without_demographics(tmp_path):
  options = ingestion.IngestionOptions(data_dir=fx.ml_latest(tmp_path / 'src'))
  prepared = ingestion.prepare_examples(options, str(tmp_path / 'out'))
  rows = _read(os.path.join(prepared.input_base, 'train', 'ratings.csv'))
  assert list(rows[0]) == features.raw_columns(False)
  assert 'age' not in rows[0] and not prepared.has_demographics
  assert prepared.info['rating_scale'] == {'low': 0.5, 'high': 5.0, 'step': 0.5}


def test_prepare_examples_reuses_identical_output(tmp_path):
  options = ingestion.IngestionOptions(data_dir=fx.ml100k(tmp_path / 'src'), sample=6)
  first = ingestion.prepare_examples(options, str(tmp_path / 'out'))
  stamp = os.stat(os.path.join(first.input_base, 'train', 'ratings.csv')).st_mtime_ns
  second = ingestion.prepare_examples(options, str(tmp_path / 'out'))
  assert second.input_base == first.input_base
  assert os.stat(os.path.join(second.input_base, 'train', 'ratings.csv')).st_mtime_ns == stamp
  assert sum(second.info['num_ratings'].values()) == 6
  other = ingestion.prepare_examples(
      ingestion.IngestionOptions(data_dir=options.data_dir, sample=6, split=splits.TEMPORAL),
      str(tmp_path / 'out'))
  assert other.input_base != first.input_base


def test_skipped_rows_are_listed_and_counted(tmp_path):
  """--on-bad-rows skip: the prepared splits hold the good rows; rejected_rows.csv (next to
  them and in the output folder) lists every bad one; the counts are in dataset.json."""
  folder = fx.ml100k(tmp_path / 'src', ratings=fx.ML_100K_RATINGS + [
      '1\t1\t9\t1', '1\t99\t3\t1', '2\tx\t3\t1', '3\t3\t1\t1'])
  out = tmp_path / 'out'
  options = ingestion.IngestionOptions(data_dir=folder, on_bad_rows=formats.SKIP)
  prepared = ingestion.prepare_examples(options, str(out))
  assert sum(prepared.info['num_ratings'].values()) == 10
  assert prepared.info['rejected_rows'] == {
      'policy': 'skip', 'total': 4, 'by_file': {'u.data': 4},
      'by_reason': {formats.DUPLICATE: 1, formats.NOT_A_NUMBER: 1,
                    formats.RATING_OFF_SCALE: 1, formats.UNKNOWN_MOVIE: 1}}
  listed = _read(str(out / ingestion.REJECTED_FILE))
  assert listed == _read(os.path.join(prepared.input_base, ingestion.REJECTED_FILE))
  assert [(r['file'], r['line'], r['reason']) for r in listed] == [
      ('u.data', '11', formats.RATING_OFF_SCALE), ('u.data', '12', formats.UNKNOWN_MOVIE),
      ('u.data', '13', formats.NOT_A_NUMBER), ('u.data', '14', formats.DUPLICATE)]
  assert listed[0]['text'] == '1\t1\t9\t1' and 'outside the scale' in listed[0]['problem']
  assert prepared.info['rejected_file'] == str(out / ingestion.REJECTED_FILE)
  line = ingestion.describe_rejected_rows(prepared.info)
  assert line.startswith('4 malformed rows skipped (duplicate: 1, ') and str(out) in line
  # Skip and fail prepare different folders (fail stops here); a fail run that succeeds
  # removes the list a skip run left in the output folder.
  with pytest.raises(formats.IngestionError, match=r'u\.data:11: rating 9'):
    ingestion.prepare_examples(ingestion.IngestionOptions(data_dir=folder), str(out))
  good = ingestion.prepare_examples(
      ingestion.IngestionOptions(data_dir=fx.ml100k(tmp_path / 'good')), str(out))
  assert not (out / ingestion.REJECTED_FILE).exists()
  assert ingestion.describe_rejected_rows(good.info) is None
  again = ingestion.prepare_examples(options, str(out))  # reused, and the list is back
  assert again.input_base == prepared.input_base
  assert _read(str(out / ingestion.REJECTED_FILE)) == listed


def test_bad_input_leaves_nothing_behind(tmp_path):
  folder = fx.ml100k(tmp_path / 'src', ratings=fx.ML_100K_RATINGS + ['1\t1\t9\t1'])
  out = tmp_path / 'out'
  with pytest.raises(formats.IngestionError, match=r'u\.data:11: rating 9'):
    ingestion.prepare_examples(ingestion.IngestionOptions(data_dir=folder), str(out))
  assert not os.path.exists(out / 'data') or os.listdir(out / 'data') == []


def test_missing_data_dir(tmp_path):
  with pytest.raises(formats.IngestionError, match='no such folder'):
    ingestion.prepare_examples(ingestion.IngestionOptions(data_dir=str(tmp_path / 'nope')),
                               str(tmp_path / 'out'))


@pytest.mark.parametrize('option, message', [
    ({'eval_fraction': 1.5}, 'eval fraction must be between 0 and 1, got 1.5'),
    ({'sample': 0}, '--sample must be at least 2 ratings'),
    ({'max_eval_ratings': -1}, '--max-eval-ratings must be positive'),
    ({'span': 'year'}, '--span must be one of')])
def test_bad_options_fail_before_any_download(tmp_path, monkeypatch, option, message):
  """No data folder and no cache: a wrong option is said at once, not after a download."""
  def no_download(*args):
    raise AssertionError(f'downloaded before checking the options: {args}')
  monkeypatch.setattr(ingestion.download, 'cached_dataset_dir', lambda *args: None)
  monkeypatch.setattr(ingestion.download, 'download_dataset', no_download)
  with pytest.raises(ValueError, match=message):
    ingestion.prepare_examples(ingestion.IngestionOptions(cache_dir=str(tmp_path), **option),
                               str(tmp_path / 'out'))


def test_eval_sample_keeps_whole_users_within_the_cap(ml100k_dir):
  data = formats.read_movielens(ml100k_dir)
  users = data.ratings.user_id
  is_eval = splits.eval_mask(data, data.ratings, splits.RANDOM, 0.2, seed=42)
  sampled = splits.evaluated_users_mask(users, is_eval, 5_000, seed=42)
  assert 4_500 < sampled.sum() <= 5_000
  assert not (sampled & ~is_eval).any()  # only eval ratings, none moved to training
  kept = np.unique(users[sampled])
  assert (sampled[np.isin(users, kept)] == is_eval[np.isin(users, kept)]).all()  # whole users
  assert (sampled == splits.evaluated_users_mask(users, is_eval, 5_000, seed=42)).all()
  assert (sampled != splits.evaluated_users_mask(users, is_eval, 5_000, seed=7)).any()
  assert splits.evaluated_users_mask(users, is_eval, 20_000, seed=42) is is_eval
  with pytest.raises(ValueError, match='--max-eval-ratings must be positive'):
    splits.evaluated_users_mask(users, is_eval, 0, seed=42)


def test_prepare_examples_samples_eval_users_and_says_so(tmp_path, ml100k_dir):
  whole = ingestion.prepare_examples(ingestion.IngestionOptions(data_dir=ml100k_dir),
                                     str(tmp_path / 'out'))
  sampled = ingestion.prepare_examples(
      ingestion.IngestionOptions(data_dir=ml100k_dir, max_eval_ratings=5_000),
      str(tmp_path / 'out'))
  assert sampled.input_base != whole.input_base
  assert whole.info['eval_sample'] is None and ingestion.describe_eval_sample(whole.info) is None
  read = lambda prepared, split: _read(os.path.join(prepared.input_base, split, 'ratings.csv'))
  assert read(sampled, 'train') == read(whole, 'train')
  evaluated, every = read(sampled, 'eval'), read(whole, 'eval')
  assert len(evaluated) == sampled.info['num_ratings']['eval'] <= 5_000
  assert all(row in every for row in evaluated[:200])
  sample = sampled.info['eval_sample']
  assert sample['eval_ratings'] == len(every) == 20_000
  assert sample['users'] == len({row['user_id'] for row in evaluated})
  assert sample['eval_users'] == len({row['user_id'] for row in every})
  assert ingestion.describe_eval_sample(sampled.info) == (
      f'Evaluating on {len(evaluated):,} of 20,000 eval ratings: all eval ratings of '
      f'{sample["users"]:,} of {sample["eval_users"]:,} users, a seeded sample '
      '(--max-eval-ratings 5000; 0 evaluates all).')


def test_max_eval_ratings_flag():
  import argparse  # pylint: disable=import-outside-toplevel
  from pipeline import cli  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser()
  cli.add_data_arguments(parser)
  assert cli.ingestion_options(parser.parse_args([])).max_eval_ratings == 500_000
  assert cli.ingestion_options(parser.parse_args(['--max-eval-ratings', '0'])).max_eval_ratings is None


def _csv_writer_rows(data, ratings, mask):
  """The reference: one csv.writer row per rating, every field quoted by csv.writer."""
  import io  # pylint: disable=import-outside-toplevel
  out = io.StringIO()
  writer = csv.writer(out, lineterminator='\n')
  writer.writerow(features.raw_columns(data.has_demographics))
  for row in np.nonzero(mask)[0]:
    movie = data.movies[int(ratings.movie_id[row])]
    fields = [int(ratings.user_id[row]), int(ratings.movie_id[row]),
              repr(float(ratings.rating[row])), int(ratings.timestamp[row])]
    if data.users is not None:
      user = data.users[int(ratings.user_id[row])]
      fields += [user.age, user.gender, user.occupation, user.zip_code]
    writer.writerow(fields + [movie.title, movie.release_year,
                              features.GENRE_SEPARATOR.join(movie.genres)])
  return out.getvalue()


@pytest.mark.parametrize('which', ['ml-100k fixture', 'ml-latest fixture', 'real ml-100k'])
def test_example_lines_are_what_csv_writer_writes(tmp_path, which, monkeypatch):
  """The prepared CSV, built from per-movie and per-user fields quoted once, is byte for byte
  one csv.writer row per rating (titles with commas and quotes included)."""
  if which == 'real ml-100k':
    from bench.provenance import ML_100K_DIR  # pylint: disable=import-outside-toplevel
    if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
      pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
    data = formats.read_movielens(ML_100K_DIR)
  elif which == 'ml-100k fixture':
    items = list(fx.ML_100K_ITEMS)
    items[0] = items[0].replace('Toy Story (1995)', 'Toy "Story", The (1995)')
    data = formats.read_movielens(fx.ml100k(tmp_path / 'src', items=items))
  else:
    data = formats.read_movielens(fx.ml_latest(tmp_path / 'src'))
  monkeypatch.setattr(ingestion, 'ROWS_PER_SLICE', 7)  # many blocks, some partial
  mask = np.random.default_rng(3).random(len(data.ratings)) < 0.7
  path = str(tmp_path / 'ratings.csv')
  ingestion.write_examples(path, data, data.ratings, mask)
  with open(path, encoding='utf-8', newline='') as f:
    assert f.read() == _csv_writer_rows(data, data.ratings, mask)


def _real_ml100k_as(ml100k_dir, folder, dataset):
  """The real ML-100K rewritten in ML-10M's (ratings.dat, movies.dat in UTF-8) or ML-latest's
  layout: the same ratings, in the same order, of the same movies."""
  data = formats.read_movielens(ml100k_dir)
  os.makedirs(folder)
  ratings = data.ratings
  rows = zip(ratings.user_id.tolist(), ratings.movie_id.tolist(), ratings.rating.tolist(),
             ratings.timestamp.tolist())
  if dataset == formats.ML_10M:
    with open(os.path.join(folder, 'ratings.dat'), 'w', encoding='utf-8') as f:
      f.writelines(f'{u}::{m}::{r:g}::{t}\n' for u, m, r, t in rows)
    with open(os.path.join(folder, 'movies.dat'), 'w', encoding='utf-8') as f:
      for movie in data.movies.values():
        assert '::' not in movie.title
        f.write(f'{movie.movie_id}::{movie.title}::{"|".join(movie.genres)}\n')
  else:
    with open(os.path.join(folder, 'ratings.csv'), 'w', encoding='utf-8', newline='') as f:
      writer = csv.writer(f, lineterminator='\n')
      writer.writerow(['userId', 'movieId', 'rating', 'timestamp'])
      writer.writerows((u, m, f'{r:.1f}', t) for u, m, r, t in rows)
    with open(os.path.join(folder, 'movies.csv'), 'w', encoding='utf-8', newline='') as f:
      writer = csv.writer(f, lineterminator='\n')
      writer.writerow(['movieId', 'title', 'genres'])
      writer.writerows((m.movie_id, m.title, '|'.join(m.genres)) for m in data.movies.values())
  return folder


def test_ml10m_layout_prepares_what_ml_latest_layout_does(tmp_path, ml100k_dir):
  """ML-10M's files hold what ML-latest's do (no demographics, half stars) in another layout:
  the real ML-100K in either layout prepares the same splits and the same catalogue, so the
  ML-latest end-to-end run (tests/pipeline/test_pipeline_ml_latest.py) covers ML-10M's too."""
  prepared = {}
  for dataset in (formats.ML_10M, formats.ML_LATEST):
    source = _real_ml100k_as(ml100k_dir, str(tmp_path / dataset), dataset)
    prepared[dataset] = ingestion.prepare_examples(
        ingestion.IngestionOptions(data_dir=source), str(tmp_path / f'out-{dataset}'))
  ten, latest = prepared[formats.ML_10M], prepared[formats.ML_LATEST]
  assert ten.dataset == formats.ML_10M and not ten.has_demographics
  assert ten.info['rating_scale'] == latest.info['rating_scale']
  assert ten.info['num_ratings'] == latest.info['num_ratings'] == {'train': 80_000, 'eval': 20_000}
  for part in ('train', 'eval'):  # the same split too, byte for byte
    with open(os.path.join(ten.input_base, part, 'ratings.csv'), 'rb') as a, open(
        os.path.join(latest.input_base, part, 'ratings.csv'), 'rb') as b:
      assert a.read() == b.read()
  with open(ten.catalogue_path, encoding='utf-8') as a, open(latest.catalogue_path,
                                                             encoding='utf-8') as b:
    assert a.read() == b.read()
