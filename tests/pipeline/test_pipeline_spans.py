"""The real pipeline over two successive monthly spans of ML-100K (a 3,000-rating sample, two
epochs), in one output folder as a scheduler would run it: each run's CsvExampleGen reads its
span through TFX's {SPAN} pattern, the later run trains on the earlier run's eval span too, and
every run is judged on ratings later than all of its training ratings, against the model the
earlier run blessed. With --warm-start, the later run's Trainers start from that model."""

import csv
import os

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.data import ingestion
from components.data import spans
from components.models import trainer
from pipeline import configs
from tests.conftest import ML_100K_DIR, run_pipeline


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  output_dir = str(tmp_path_factory.mktemp('spans'))
  summaries = []
  for span in ('199803', '199804'):
    result, summary = run_pipeline(ML_100K_DIR, output_dir, '--span', 'month',
                                   '--eval-span', span, '--warm-start')
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'evaluated on span {span}' in result.stderr
    summaries.append(summary)
  return output_dir, summaries


def test_each_run_trains_on_the_past_and_is_judged_on_its_span(two_runs):
  _, (first, second) = two_runs
  for summary, span in ((first, 199803), (second, 199804)):
    data = summary['data']
    assert data['eval_span'] == span and data['train_spans'][-1] < span
    assert data['eval_min_timestamp'] > data['train_max_timestamp']
    assert [m['metrics']['example_count'] for m in summary['models']] == \
        [data['num_ratings']['eval']] * 2
  # The later run's window holds the earlier run's training spans and its eval span.
  assert second['data']['train_spans'] == first['data']['train_spans'] + [199803]
  assert second['data']['num_ratings']['train'] == (first['data']['num_ratings']['train']
                                                    + first['data']['num_ratings']['eval'])


def test_example_gen_read_one_span_per_run_and_the_baseline_is_the_earlier_model(two_runs):
  output_dir, (first, second) = two_runs
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = os.path.join(output_dir, 'metadata.sqlite')
  store = metadata_store.MetadataStore(config)
  read = sorted(a.custom_properties['span'].int_value
                for a in store.get_artifacts_by_type('Examples') if 'span' in a.custom_properties)
  assert read == [199803, 199804]  # ExampleGen's, one per run
  for model in second['models']:  # blessed against the first run's model, on span 199804
    earlier = next(m for m in first['models'] if m['name'] == model['name'])
    assert earlier['blessed'] and earlier['pushed']
    assert model['baseline_model'] == earlier['model_uri']
    assert model['baseline_metrics']['example_count'] == model['metrics']['example_count']


def _split_rows(summary, split):
  path = spans.split_file(summary['data']['input_base'], summary['data']['eval_span'], split,
                          ingestion.EXAMPLES_FILE)
  with open(path, encoding='utf-8', newline='') as f:
    return list(csv.DictReader(f))


def test_new_users_and_movies_slices_hold_what_the_data_says_is_new(two_runs):
  """Users and movies first seen in the eval span, counted from the data, are the Evaluator's
  cold-user and unseen-movie slices, for both models, also when a baseline model (trained one
  span earlier, to which fewer users are known) is evaluated beside the candidate."""
  _, (first, second) = two_runs
  assert all(m['baseline_model'] for m in second['models'])  # the case that used to differ
  for summary in (first, second):
    train, evaluated = _split_rows(summary, ingestion.TRAIN), _split_rows(summary, ingestion.EVAL)
    users, movies = {r['user_id'] for r in train}, {r['movie_id'] for r in train}
    new_users = sum(r['user_id'] not in users for r in evaluated)
    new_movies = sum(r['movie_id'] not in movies for r in evaluated)
    assert new_users and new_movies
    for model in summary['models']:
      slices = model['slices']
      assert slices['user_activity:cold (0)']['example_count'] == new_users, model['name']
      assert slices['movie_popularity:unseen (0)']['example_count'] == new_movies, model['name']
      # Every rating in exactly one activity bucket: the buckets add up to the eval span.
      assert sum(v['example_count'] for k, v in slices.items()
                 if k.startswith('user_activity:')) == len(evaluated)


def test_the_later_run_warm_starts_from_the_model_the_earlier_run_blessed(two_runs):
  _, (first, second) = two_runs
  hparams = configs.default_hparams()
  for model in first['models']:  # nothing was served: from scratch
    assert 'warm_start' not in model['training']
  for model in second['models']:
    earlier = next(m for m in first['models'] if m['name'] == model['name'])
    warm = model['training']['warm_start']
    assert warm['from'] == os.path.join(earlier['model_uri'], 'Format-Serving')
    assert warm['base_ratings'] == first['data']['num_ratings']['train']
    assert warm['tables'] and warm['copied']  # which ones: tests/models/test_warm_start.py
    # A share of the fit from scratch (the sample's fit is 2 epochs: a part of one).
    trained = model['training']
    run_hparams = hparams[model['name']].replace(epochs=2)
    epochs, steps = trainer.training_steps(run_hparams, trained['examples'], warm_start=True)
    assert (trained['epochs'], trained['examples_per_epoch']) == (
        epochs, min(trained['examples'], steps * run_hparams.batch_size))
    assert epochs * steps < 2 * trainer.training_steps(run_hparams, trained['examples'])[1]


def test_an_unchanged_warm_started_re_run_is_fully_cached(two_runs):
  """(Last: it adds a run to the folder.) The served model was trained on this very data, so
  the warm start's base is the one the cached Trainers started from, not the served one."""
  output_dir, (_, second) = two_runs
  result, again = run_pipeline(ML_100K_DIR, output_dir, '--span', 'month', '--eval-span',
                               '199804', '--warm-start')
  assert result.returncode == 0, result.stdout + result.stderr
  states = {c['id']: c['state'] for c in again['components']}
  for model in again['models']:
    assert states[f'Trainer_{model["name"]}'] == states[f'Evaluator_{model["name"]}'] == 'CACHED'
  assert ({m['name']: m['serving_version_path'] for m in again['models']}
          == {m['name']: m['serving_version_path'] for m in second['models']})
