"""The real pipeline on a small MovieLens-latest-format folder the test writes: no user
demographics, half-star ratings. The schema, Transform and both models must adapt. The folder
also holds malformed rows, which `--on-bad-rows skip` drops, counts and lists, and more eval
ratings than `--max-eval-ratings`, so the Evaluators see a sample of the eval users."""

import csv
import html
import json
import os
import random
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests.conftest import PROJECT_DIR


def _write_latest(folder):
  rng = random.Random(1)
  genres = ['Drama', 'Comedy|Romance', 'Action|Sci-Fi', '(no genres listed)']
  with open(os.path.join(folder, 'movies.csv'), 'w', encoding='utf-8') as f:
    f.write('movieId,title,genres\n')
    for m in range(1, 41):
      f.write(f'{m},"Film {m}, The ({1950 + m})",{rng.choice(genres)}\n')
  with open(os.path.join(folder, 'ratings.csv'), 'w', encoding='utf-8') as f:
    f.write('userId,movieId,rating,timestamp\n')
    for u in range(1, 31):
      for m in rng.sample(range(1, 41), 20):
        f.write(f'{u},{m},{rng.choice([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5])},'
                f'{964982703 + u * 100 + m}\n')
    f.write('1,41,4.0,964982703\n'    # a movie not in movies.csv
            '2,1,4.2,964982703\n'     # not a half star
            '3,1,four,964982703\n'    # not a number
            '4,2\n')                  # wrong field count
  return 30 * 20, 4  # good and bad ratings


def test_ml_latest_format_runs_end_to_end(tmp_path):
  data_dir, output_dir = tmp_path / 'ml-latest-small', tmp_path / 'run'
  data_dir.mkdir()
  good, bad = _write_latest(str(data_dir))
  result = subprocess.run(
      [sys.executable, os.path.join(PROJECT_DIR, 'local_runner.py'), '--data-dir', str(data_dir),
       '--output-dir', str(output_dir), '--epochs', '2', '--max-rmse', '3',
       '--on-bad-rows', 'skip', '--max-eval-ratings', '60',
       # Its ratings are random: no list can beat popularity on them, so that gate is off.
       '--allow-below-most-popular'],
      cwd=PROJECT_DIR, capture_output=True, text=True, timeout=1200)
  assert result.returncode == 0, result.stdout + result.stderr
  with open(output_dir / 'run_summary.json', encoding='utf-8') as f:
    summary = json.load(f)
  # Every row is either in the splits or counted and listed with its reason.
  counts, sample = summary['data']['num_ratings'], summary['data']['eval_sample']
  assert counts['train'] + sample['eval_ratings'] == good
  assert 0 < counts['eval'] <= 60 < sample['eval_ratings']
  rejected = summary['data']['rejected_rows']
  assert rejected['total'] == bad and rejected['by_reason'] == {
      'not a number': 1, 'rating off the scale': 1, 'unknown movie': 1, 'wrong field count': 1}
  with open(output_dir / 'rejected_rows.csv', encoding='utf-8') as f:
    listed = list(csv.DictReader(f))
  assert [(r['file'], r['line']) for r in listed] == [
      ('ratings.csv', str(line)) for line in range(good + 2, good + 2 + bad)]
  stated = (f'4 malformed rows skipped (not a number: 1, rating off the scale: 1, unknown '
            f'movie: 1, wrong field count: 1), listed in {output_dir / "rejected_rows.csv"}.')
  assert stated in result.stdout
  sampled = (f'Evaluating on {counts["eval"]:,} of {sample["eval_ratings"]:,} eval ratings: '
             f'all eval ratings of {sample["users"]} of {sample["eval_users"]} users, a seeded '
             'sample (--max-eval-ratings 60; 0 evaluates all).')
  assert sampled in result.stdout
  with open(output_dir / 'report' / 'index.html', encoding='utf-8') as f:
    report = f.read()
  assert html.escape(stated) in report and html.escape(sampled) in report
  assert summary['data']['dataset'] == 'ml-latest'
  assert summary['data']['has_demographics'] is False
  assert summary['data']['rating_scale'] == {'low': 0.5, 'high': 5.0, 'step': 0.5}
  with open(os.path.join(summary['data']['input_base'], 'train', 'ratings.csv'),
            encoding='utf-8') as f:
    seen = {row['movie_id'] for row in csv.DictReader(f) if row['user_id'] == '1'}
  for model in summary['models']:
    assert model['pushed'] is True, model
    assert model['metrics']['example_count'] == counts['eval']  # TFMA saw the sample only
    # No demographics in ML-latest: those slices are simply not there.
    assert {name.partition(':')[0] for name in model['slices']} == {
        'genre', 'user_activity', 'movie_popularity'}
    loaded = tf.saved_model.load(model['pushed_version_path'])
    recommend = loaded.signatures['recommend']
    profile = ({'rated_movie_ids': tf.constant([[''], ['']]),
                'rated_ratings': tf.zeros([2, 1])} if model['name'] == 'content_based' else {})
    assert set(recommend.structured_input_signature[1]) == {'user_id', 'k', 'exclude_movie_ids',
                                                            *profile}
    top = recommend(user_id=tf.constant(['1', '']), k=tf.constant([5, 5]),
                    exclude_movie_ids=tf.zeros([2, 0], tf.string), **profile)
    ids = top['movie_ids'].numpy()
    assert all(ids[0]) and all(ids[1])
    assert not {m.decode() for m in ids[0]} & seen
    rating = loaded.signatures['predict_rating'](
        user_id=tf.constant(['1', 'no-such-user']), movie_id=tf.constant(['3', 'no-such-movie']),
        **profile)
    values = rating['rating'].numpy()
    assert np.isfinite(values).all() and ((0.5 <= values) & (values <= 5.0)).all()
