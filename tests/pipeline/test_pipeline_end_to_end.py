"""The real pipeline (TFX components, Beam DirectRunner, SQLite ML Metadata) on real ratings.

A few thousand ratings of MovieLens 100K, two epochs: slow enough to be one test module, fast
enough for every CI run. The second run must come entirely from TFX's cache.
"""

import csv
import datetime
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from components.data import features
from components.evaluation import ranking_metrics
from pipeline import example_lists
from tests.conftest import MODELS, PROJECT_DIR, run_pipeline as _run

def test_both_models_are_evaluated_blessed_and_pushed(finished_run):
  _, output_dir, result, summary = finished_run
  assert summary['status'] == 'succeeded' and summary['error'] is None
  assert summary['data']['num_ratings'] == {'train': 2400, 'eval': 600}
  assert [m['name'] for m in summary['models']] == list(MODELS)
  for model in summary['models']:
    metrics = model['metrics']
    assert metrics['example_count'] == 600
    assert 0.0 < metrics['mae'] <= metrics['rmse'] < 1.5
    assert metrics['mse'] == pytest.approx(metrics['rmse'] ** 2, rel=1e-4)
    assert model['blessed'] is True and model['pushed'] is True
    path = model['pushed_version_path']
    assert os.path.dirname(path) == os.path.join(output_dir, 'serving', model['name'])
    assert os.path.basename(path).isdigit()
    assert os.path.isfile(os.path.join(path, 'saved_model.pb'))
    assert model['name'] in result.stdout  # the human summary names each model
  # TF Serving's model config lists both served models at their Pusher folders.
  with open(os.path.join(output_dir, 'serving', 'models.config'), encoding='utf-8') as f:
    config = f.read()
  for name in MODELS:
    assert f'name: "{name}"' in config
    assert f'base_path: "{os.path.join(output_dir, "serving", name)}"' in config


def test_progress_names_every_component_with_its_time(finished_run):
  _, _, result, summary = finished_run
  ids = [c['id'] for c in summary['components']]
  for expected in ('CsvExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
                   'AnomaliesGate', 'Transform', 'Trainer_content_based',
                   'Evaluator_collaborative_filtering', 'Pusher_content_based'):
    assert expected in ids
    assert f'{expected} ... done in ' in result.stderr
  assert all(c['state'] == 'COMPLETE' and c['seconds'] >= 0 for c in summary['components'])
  # Start times (for bench/pipeline.py's memory per component): in the run, in DAG order.
  starts = {c['id']: c['start_time'] for c in summary['components']}
  began = datetime.datetime.fromisoformat(summary['started_at']).timestamp()
  assert all(began - 1 <= start <= began + summary['seconds']['pipeline'] + 1
             for start in starts.values())
  assert starts['CsvExampleGen'] < starts['Transform'] < starts['Trainer_content_based']


def test_pushed_serving_default_predicts_a_rating(finished_run):
  _, _, _, summary = finished_run
  example = tf.train.Example(features=tf.train.Features(feature={
      'user_id': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'196'])),
      'movie_id': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'242'])),
      'timestamp': tf.train.Feature(int64_list=tf.train.Int64List(value=[881250949])),
      'age': tf.train.Feature(int64_list=tf.train.Int64List(value=[49])),
      'gender': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'M'])),
      'occupation': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'writer'])),
      'zip_code': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'55105'])),
      'title': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'Kolya (1996)'])),
      'release_year': tf.train.Feature(int64_list=tf.train.Int64List(value=[1997])),
      'genres': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'Comedy'])),
  })).SerializeToString()
  unseen = tf.train.Example()
  unseen.CopyFrom(tf.train.Example.FromString(example))
  unseen.features.feature['user_id'].bytes_list.value[:] = [b'no-such-user']
  unseen.features.feature['movie_id'].bytes_list.value[:] = [b'no-such-movie']
  for model in summary['models']:
    loaded = tf.saved_model.load(model['pushed_version_path'])  # as TF Serving loads it
    signature = loaded.signatures['serving_default']
    assert list(signature.structured_input_signature[1]) == ['examples']
    ratings = signature(examples=tf.constant([example, unseen.SerializeToString()]))
    values = ratings[features.LABEL].numpy().tolist()
    assert len(values) == 2
    assert all(math.isfinite(v) and 1.0 <= v <= 5.0 for v in values), values


SLICE_FEATURES = ('gender', 'occupation', 'age_group', 'genre', 'user_activity',
                  'movie_popularity')


def _ratings(summary, split):
  with open(os.path.join(summary['data']['input_base'], split, 'ratings.csv'),
            encoding='utf-8') as f:
    return list(csv.DictReader(f))


def test_slice_and_query_metrics_on_real_data(finished_run):
  _, _, _, summary = finished_run
  train, evaluated = _ratings(summary, 'train'), _ratings(summary, 'eval')
  user_counts, movie_counts = {}, {}
  for row in train:
    user_counts[row['user_id']] = user_counts.get(row['user_id'], 0) + 1
    movie_counts[row['movie_id']] = movie_counts.get(row['movie_id'], 0) + 1
  cold = sum(1 for row in evaluated if row['user_id'] not in user_counts)
  popular = sum(1 for row in evaluated if movie_counts.get(row['movie_id'], 0) >= 100)
  mean_label = sum(float(row['rating']) for row in evaluated) / len(evaluated)
  for model in summary['models']:
    slices, overall = model['slices'], model['metrics']
    assert {name.partition(':')[0] for name in slices} == set(SLICE_FEATURES)
    for feature in SLICE_FEATURES:
      in_feature = [v for name, v in slices.items() if name.startswith(feature + ':')]
      total = sum(v['example_count'] for v in in_feature)
      if feature == 'genre':  # a movie counts in each of its genres
        assert total > len(evaluated)
      else:  # every rating in exactly one slice of the feature
        assert total == len(evaluated), feature
      for values in in_feature:
        assert values['mse'] == pytest.approx(values['rmse'] ** 2, rel=1e-4)
    assert {'gender:F', 'gender:M', 'genre:Drama', 'genre:Comedy'} <= set(slices)
    # User activity and movie popularity are counted in the model's training data.
    assert slices.get('user_activity:cold (0)', {}).get('example_count', 0) == cold
    assert slices.get('movie_popularity:popular (100+)', {}).get('example_count', 0) == popular
    assert overall['mean_label'] == pytest.approx(mean_label, rel=1e-5)
    assert 1.0 <= overall['mean_prediction'] <= 5.0
    assert 0.0 < overall['ndcg@5'] <= 1.0 and 0.0 < overall['ndcg@10'] <= 1.0
    buckets = model['calibration']
    assert sum(b['count'] for b in buckets) == len(evaluated)
    # TFMA's first and last buckets are open: their outer bound is null in the JSON.
    assert all((b['low'] is None or b['low'] <= b['mean_prediction'])
               and (b['high'] is None or b['mean_prediction'] <= b['high']) for b in buckets)
    assert all(b['low'] is not None for b in buckets[1:])
    assert all(b['high'] is not None for b in buckets[:-1])


def _report(output_dir):
  """The run report rendered by headless Chromium: (DOM, images, images that loaded)."""
  from tests import browser  # pylint: disable=import-outside-toplevel
  return browser.render(os.path.join(output_dir, 'report', 'index.html'))


def _cell_numbers(dom, table_id):
  table = dom.split(f'id="{table_id}"', 1)[1].split('</table>', 1)[0]
  cells = [c.split('</td>', 1)[0] for c in table.split('<td>')[1:]]
  return [float(c.replace(',', '')) for c in cells if c.replace(',', '').replace('.', '', 1).isdigit()]


def test_report_renders_with_the_run_numbers_and_every_image(finished_run):
  _, output_dir, result, _ = finished_run
  assert f'Report: {os.path.join(output_dir, "report", "index.html")}' in result.stdout
  with open(os.path.join(output_dir, 'run_summary.json'), encoding='utf-8') as f:
    # the latest run in this folder, which the report shows; strict JSON (no Infinity or NaN)
    summary = json.load(f, parse_constant=lambda name: pytest.fail(f'{name} in the summary'))
  dom, images, loaded = _report(output_dir)
  assert images >= 3 * len(summary['models']) + 1 and loaded == images
  for model in summary['models']:
    numbers = _cell_numbers(dom, f'metrics-{model["name"]}')
    for key in ('rmse', 'mae', 'mse', 'ndcg@10'):
      assert round(model['metrics'][key], 4) in numbers, key
    assert model['metrics']['example_count'] in numbers
    gender = _cell_numbers(dom, f'slices-{model["name"]}-gender')
    assert round(model['slices']['gender:F']['rmse'], 4) in gender
    ranking = _cell_numbers(dom, f'ranking-{model["name"]}')
    for key in ('precision@10', 'recall@10', 'ndcg@10', 'map@10', 'coverage'):
      assert round(model['ranking'][key], 4) in ranking, key
      assert round(model['ranking']['most_popular'][key], 4) in ranking, key
    assert model['ranking']['users'] in ranking
  assert 'id="statistics-train"' in dom and 'id="anomalies"' in dom  # data: none found


def _rated(input_base, split):
  """{user id: set of movie ids} of a split the pipeline read."""
  rated = {}
  folder = os.path.join(input_base, split)
  for name in os.listdir(folder):
    with open(os.path.join(folder, name), encoding='utf-8', newline='') as f:
      for row in csv.DictReader(f):
        rated.setdefault(row[features.USER_ID], set()).add(row[features.MOVIE_ID])
  return rated


def test_report_shows_three_users_lists_beside_their_best_rated_movies(finished_run):
  import html  # pylint: disable=import-outside-toplevel
  from pipeline import report  # pylint: disable=import-outside-toplevel
  _, output_dir, _, _ = finished_run
  with open(os.path.join(output_dir, 'run_summary.json'), encoding='utf-8') as f:
    summary = json.load(f)
  train = _rated(summary['data']['input_base'], 'train')
  evaluated = _rated(summary['data']['input_base'], 'eval')
  users = summary['example_users']
  assert len(users) == 3 and len({u['user_id'] for u in users}) == 3
  dom, _, _ = _report(output_dir)
  for i, user in enumerate(users):
    assert user['training_ratings'] == len(train[user['user_id']])
    assert sorted(user['eval_movie_ids']) == sorted(evaluated[user['user_id']])
    best = user['best_rated']
    assert 0 < len(best) <= 5 and {b['movie_id'] for b in best} <= train[user['user_id']]
    assert [b['rating'] for b in best] == sorted((b['rating'] for b in best), reverse=True)
    table = dom.split(f'id="lists-user-{user["user_id"]}"', 1)[1].split('</table>', 1)[0]
    heading = dom.split(f'id="lists-user-{user["user_id"]}"', 1)[0].rsplit('<h3>', 1)[1]
    for b in best:
      assert html.escape(f'{b["title"]} ({b["rating"]:g})', quote=False) in table
    for model in summary['models']:
      top = model['example_lists'][i]
      assert top['user_id'] == user['user_id'] and len(top['top']) == 10
      ids = [m['movie_id'] for m in top['top']]
      assert len(set(ids)) == 10 and not set(ids) & train[user['user_id']]  # unseen movies only
      assert all(math.isfinite(m['score']) for m in top['top'])
      assert [m['score'] for m in top['top']] == sorted((m['score'] for m in top['top']),
                                                        reverse=True)
      hits = [m['hit'] for m in top['top']]
      assert hits == [m in evaluated[user['user_id']] for m in ids]
      for m in top['top']:
        assert html.escape(m['title'] + (report.HIT if m['hit'] else ''), quote=False) in table
      assert f'{model["name"]} {sum(hits)}' in heading
      # As a new user who sent only their five best-rated movies: a list without those.
      new = top['as_new_user']
      new_ids = [m['movie_id'] for m in new]
      assert len(set(new_ids)) == 10 and not set(new_ids) & {b['movie_id'] for b in best}
      assert [m['hit'] for m in new] == [m in evaluated[user['user_id']] for m in new_ids]
      assert [m['score'] for m in new] == sorted((m['score'] for m in new), reverse=True)
      for m in new:
        assert html.escape(m['title'] + (report.HIT if m['hit'] else ''), quote=False) in table
      assert f'{model["name"]}, as a new user' in table


def test_report_is_rebuilt_from_a_finished_run_without_rerunning(finished_run):
  _, output_dir, _, _ = finished_run
  os.remove(os.path.join(output_dir, 'report', 'index.html'))
  result = subprocess.run([sys.executable, '-m', 'pipeline.report', output_dir], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert os.path.isfile(os.path.join(output_dir, 'report', 'index.html'))
  assert not [n for n in os.listdir(output_dir) if n.startswith('.report')]  # no leftovers
  missing = subprocess.run([sys.executable, '-m', 'pipeline.report', output_dir + '-none'],
                           cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
  assert missing.returncode == 2 and 'holds no finished run' in missing.stderr


def test_a_report_of_a_run_whose_artifacts_are_gone_is_a_clear_error(finished_run, tmp_path,
                                                                       capsys):
  from pipeline import report  # pylint: disable=import-outside-toplevel
  _, output_dir, _, _ = finished_run
  with open(os.path.join(output_dir, 'run_summary.json'), encoding='utf-8') as f:
    summary = json.load(f)
  summary['artifacts']['anomalies']['uri'] = str(tmp_path / 'deleted' / 'anomalies')
  moved = tmp_path / 'moved'
  moved.mkdir()
  (moved / 'run_summary.json').write_text(json.dumps(summary), encoding='utf-8')
  assert report.main([str(moved)]) == 2
  error = capsys.readouterr().err
  assert 'names artifacts that are gone' in error and 'deleted' in error
  assert os.listdir(moved) == ['run_summary.json']  # no report, no staging folder left


def test_unchanged_rerun_comes_from_the_cache(finished_run):
  data_dir, output_dir, _, first = finished_run
  result, summary = _run(data_dir, output_dir)
  assert result.returncode == 0, result.stdout + result.stderr
  states = {c['id']: c['state'] for c in summary['components']}
  assert states['Transform'] == 'CACHED' and states['Trainer_content_based'] == 'CACHED'
  assert states['Evaluator_collaborative_filtering'] == 'CACHED'
  for before, after in zip(first['models'], summary['models']):
    assert after['metrics'] == before['metrics']
    assert after['serving_version_path'] == before['pushed_version_path']
    assert summary['example_users'] == first['example_users']
    assert after['model_uri'] == before['model_uri'] and after['example_lists']
    assert after['example_lists'] == before['example_lists']


def test_example_lists_are_reused_only_for_the_same_model_and_users(finished_run):
  from pipeline import run_summary  # pylint: disable=import-outside-toplevel
  _, _, _, first = finished_run
  model, users = first['models'][0], first['example_users']
  kept = [{'user_id': 'from the previous summary', 'top': [], 'as_new_user': []}]
  previous = {'model_uri': model['model_uri'], 'example_users': users, 'example_lists': kept}
  assert run_summary._example_lists(model['model_uri'], users, previous) is kept
  # A summary of before the new-user lists: asked of the SavedModel again, to have them.
  older = {**previous, 'example_lists': [{'user_id': 'older', 'top': []}]}
  assert run_summary._example_lists(model['model_uri'], users, older) == model['example_lists']
  # Other users (or another model): asked of the SavedModel again.
  again = run_summary._example_lists(model['model_uri'], users[:2], previous)
  ids = lambda lists: [[m['movie_id'] for m in row['top']] for row in lists]
  assert ids(again) == ids(model['example_lists'][:2])
  # The users themselves: the last run's for the same prepared folder, else drawn again.
  splits_dir = first['data']['splits_dir']  # without spans, the prepared folder itself
  assert splits_dir == first['data']['input_base']
  last = {'data': {'splits_dir': splits_dir}, 'example_users': kept}
  assert run_summary._example_users(splits_dir, last) is kept
  assert run_summary._example_users(splits_dir, {}) == users


def test_a_clearly_worse_model_is_refused_and_the_served_one_stays(finished_run):
  data_dir, output_dir, _, first = finished_run
  # A deliberately broken setting: a learning rate so large that training diverges.
  result, summary = _run(data_dir, output_dir, '--models', 'collaborative_filtering',
                         '--set', 'collaborative_filtering.learning_rate=10')
  assert result.returncode == 0, result.stdout + result.stderr
  model = summary['models'][0]
  before = next(m for m in first['models'] if m['name'] == 'collaborative_filtering')
  assert model['baseline_metrics']['rmse'] == pytest.approx(before['metrics']['rmse'])
  assert model['baseline_model'] is not None
  assert model['metrics']['rmse'] > before['metrics']['rmse'] + 0.01  # clearly worse
  assert model['blessed'] is False and model['pushed'] is False
  assert 'not blessed: root_mean_squared_error' in model['why_not_pushed']
  assert model['serving_version_path'] == before['pushed_version_path']  # still served
  assert 'not pushed' in result.stdout
  dom, _, _ = _report(output_dir)  # the report says why
  verdict = dom.split('id="model-collaborative_filtering"', 1)[1].split('</p>', 1)[0]
  assert 'Not pushed: not blessed: root_mean_squared_error' in verdict


def test_a_model_whose_lists_collapsed_is_refused_though_its_ratings_hold(finished_run):
  data_dir, output_dir, _, first = finished_run
  before = next(m for m in first['models'] if m['name'] == 'content_based')
  for model in first['models']:  # both blessed on their lists too, with the figures reported
    ranking = model['ranking']
    assert set(ranking) >= {'precision@10', 'recall@10', 'ndcg@10', 'map@10', 'coverage',
                            'users', 'most_popular', 'curve'}
    assert ranking['users'] == ranking['most_popular']['users'] > 0
    assert len(ranking['curve']['precision']) == len(ranking['curve']['recall']) == 50
  # Without its ranking head content_based ranks by predicted rating: its ratings are as good,
  # its lists fall below most-popular's.
  result, summary = _run(data_dir, output_dir, '--models', 'content_based',
                         '--set', 'content_based.retrieval_weight=0')
  assert result.returncode == 0, result.stdout + result.stderr
  model = summary['models'][0]
  assert model['metrics']['rmse'] <= before['metrics']['rmse'] + 0.01  # the RMSE gate passes
  assert model['ranking']['ndcg@10'] < before['ranking']['ndcg@10'] - 0.01
  assert model['ranking']['baseline']['ndcg@10'] == pytest.approx(before['ranking']['ndcg@10'])
  assert model['blessed'] is False and model['pushed'] is False
  assert 'ranking/ndcg@10 changed by' in model['why_not_pushed']
  assert 'root_mean_squared_error' not in model['why_not_pushed']
  assert model['serving_version_path'] == before['pushed_version_path']  # still served


def test_the_evaluators_top_10_figures_are_those_of_the_served_lists(finished_run):
  """TFMA's TopKRanking (lists from the `transformed_features` signature, combined per slice)
  gives the figures of each eval user's list from the pushed model's `recommend`, scored
  directly with ranking_metrics.list_metrics."""
  _, _, _, summary = finished_run
  relevant, trained, known = {}, set(), set()
  for row in example_lists._rows(summary['data']['input_base'], 'eval'):  # pylint: disable=protected-access
    relevant.setdefault(row['user_id'], set()).add(row['movie_id'])
  for row in example_lists._rows(summary['data']['input_base'], 'train'):  # pylint: disable=protected-access
    trained.add(row['movie_id'])
    known.add(row['user_id'])
  users = sorted(relevant)
  for model in summary['models']:
    # An eval user with no training ratings is asked for as a new user, with nothing sent: the
    # Evaluator reads such a user's list from the signature without features either.
    lists = example_lists.top_lists(model['pushed_version_path'], [
        {'user_id': u if u in known else '', 'eval_movie_ids': []} for u in users])
    served = ranking_metrics.list_metrics([[e['movie_id'] for e in top['top']] for top in lists],
                                          [relevant[u] for u in users], 10, len(trained))
    assert served['users'] == model['ranking']['users'] == len(users)
    for field in ranking_metrics.SUMMARY_FIELDS:
      assert model['ranking'][field] == pytest.approx(served[field], abs=1e-6), (model['name'],
                                                                                 field)


def _pushed(summary, name):
  model = next(m for m in summary['models'] if m['name'] == name)
  return tf.saved_model.load(model['pushed_version_path'])


def _rated_in_training(summary, user_id):
  path = os.path.join(summary['data']['input_base'], 'train', 'ratings.csv')
  with open(path, encoding='utf-8') as f:
    return {row['movie_id'] for row in csv.DictReader(f) if row['user_id'] == user_id}


def _user_features(name, values, rated=None):
  """content_based's user inputs: demographics per row, and rated movies ('' = none)."""
  if name != 'content_based':
    return {}
  age, gender, occupation, zip_code = zip(*values)
  rated = rated or [[('', 0.0)]] * len(values)
  return dict(age=tf.constant(age, tf.int64), gender=tf.constant(gender),
              occupation=tf.constant(occupation), zip_code=tf.constant(zip_code),
              rated_movie_ids=tf.constant([[m for m, _ in row] for row in rated]),
              rated_ratings=tf.constant([[r for _, r in row] for row in rated], tf.float32))


def _check_rating_profile(loaded):
  """content_based scores a new user from the ratings sent with the request."""
  name, demographics = 'content_based', [(30, 'F', 'writer', '55105')]
  likes = [[('50', 5.0), ('181', 5.0), ('172', 5.0)]]
  hates = [[('50', 1.0), ('181', 1.0), ('172', 1.0)]]
  predict = lambda rated: loaded.signatures['predict_rating'](
      user_id=tf.constant(['new-user']), movie_id=tf.constant(['174']),
      **_user_features(name, demographics, rated))['rating'].numpy()[0]
  # Loving three Star Wars films predicts a higher rating for Raiders than hating them.
  assert predict(likes) > predict(hates)
  top = loaded.signatures['recommend'](
      user_id=tf.constant(['new-user']), k=tf.constant([20], tf.int32),
      exclude_movie_ids=tf.zeros([1, 0], tf.string), **_user_features(name, demographics, likes))
  assert not {'50', '181', '172'} & {m.decode() for m in top['movie_ids'].numpy()[0]}
  for bad in ([[('no-such-movie', 4.0)]], [[('50', 9.0)]]):
    with pytest.raises(tf.errors.InvalidArgumentError):
      predict(bad)


@pytest.mark.parametrize('name', MODELS)
def test_signatures_and_their_contract(finished_run, name):
  _, _, _, summary = finished_run
  loaded = _pushed(summary, name)
  assert set(loaded.signatures) >= {'serving_default', 'predict_rating', 'recommend',
                                     'similar_movies'}
  user_inputs = ({'age', 'gender', 'occupation', 'zip_code', 'rated_movie_ids', 'rated_ratings'}
                 if name == 'content_based' else set())
  assert set(loaded.signatures['predict_rating'].structured_input_signature[1]) == \
      {'user_id', 'movie_id'} | user_inputs
  assert set(loaded.signatures['recommend'].structured_input_signature[1]) == \
      {'user_id', 'k', 'exclude_movie_ids'} | user_inputs

  # predict_rating: known, unknown user and unknown movie all get a finite rating in scale.
  ratings = loaded.signatures['predict_rating'](
      user_id=tf.constant(['196', 'no-such-user', '196']),
      movie_id=tf.constant(['242', '242', 'no-such-movie']),
      **_user_features(name, [(-1, '', '', ''), (30, 'F', 'writer', '55105'), (-1, '', '', '')]))
  values = ratings['rating'].numpy()
  assert values.shape == (3,) and ratings['rating'].dtype == tf.float32
  assert np.isfinite(values).all() and ((1.0 <= values) & (values <= 5.0)).all()

  # recommend: k best per row, never a movie rated in training or asked to be excluded.
  user = '196'
  seen = _rated_in_training(summary, user)
  assert seen, 'user 196 should have training ratings in the sample'
  first = loaded.signatures['recommend'](
      user_id=tf.constant([user]), k=tf.constant([10], tf.int32),
      exclude_movie_ids=tf.zeros([1, 0], tf.string), **_user_features(name, [(-1, '', '', '')]))
  top = [m.decode() for m in first['movie_ids'].numpy()[0]]
  assert len(top) == 10 and len(set(top)) == 10 and not set(top) & seen
  scores = first['scores'].numpy()[0]
  assert (np.diff(scores) <= 1e-6).all()  # best first
  assert all(t.decode() for t in first['titles'].numpy()[0])
  # '' asks for a new user's list (content_based: from the demographics sent with it).
  again = loaded.signatures['recommend'](
      user_id=tf.constant([user, '']), k=tf.constant([10, 3], tf.int32),
      exclude_movie_ids=tf.constant([[top[0], top[1]], ['', '']]),
      **_user_features(name, [(-1, '', '', ''), (30, 'F', 'writer', '55105')]))
  ids = again['movie_ids'].numpy()
  assert not {top[0], top[1]} & {m.decode() for m in ids[0]}
  assert [m.decode() for m in ids[0][:8]] == top[2:]
  assert all(ids[1][:3]) and not any(ids[1][3:])  # the new user gets k=3, then blanks
  # A user_id unknown to training with nothing else to go on is a bad request, not a guess.
  with pytest.raises(tf.errors.InvalidArgumentError, match='unknown user_id'):
    loaded.signatures['recommend'](
        user_id=tf.constant([user, 'no-such-user']), k=tf.constant([3, 3], tf.int32),
        exclude_movie_ids=tf.zeros([2, 0], tf.string),
        **_user_features(name, [(-1, '', '', ''), (-1, '', '', '')]))

  if name == 'content_based':
    _check_rating_profile(loaded)

  # similar_movies: k neighbours, not the movie itself, cosine in [-1, 1].
  similar = loaded.signatures['similar_movies'](movie_id=tf.constant(['50']),
                                                k=tf.constant([5], tf.int32))
  neighbours = [m.decode() for m in similar['movie_ids'].numpy()[0]]
  assert len(neighbours) == 5 and '50' not in neighbours
  assert (np.abs(similar['scores'].numpy()) <= 1.0 + 1e-5).all()

  # Bad requests are errors, not wrong answers.
  for bad in (dict(movie_id=tf.constant(['50']), k=tf.constant([0], tf.int32)),
              dict(movie_id=tf.constant(['50']), k=tf.constant([10 ** 6], tf.int32)),
              dict(movie_id=tf.constant(['no-such-movie']), k=tf.constant([3], tf.int32))):
    with pytest.raises(tf.errors.InvalidArgumentError):
      loaded.signatures['similar_movies'](**bad)
