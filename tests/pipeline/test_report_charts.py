"""The run summary is strict JSON, and the report's charts draw every bucket, open ones too.

TFMA's calibration histogram has open first and last buckets (bounds of -inf and +inf), and a
model that clips its predictions at 5 fills the last one. Python's json writes those bounds as
`Infinity`, which JavaScript's JSON.parse and jq refuse, and matplotlib drew the bucket's bar
at NaN and the diagonal from 1 to infinity (neither appeared).
"""

import json
import os
import warnings

import pytest

from pipeline import report
from pipeline import run_summary

_INF = float('inf')


def _buckets():
  """Three buckets as `run_summary._calibration` reads them: an open last one."""
  return [{'low': 1.0, 'high': 1.1, 'count': 8, 'mean_label': 1.4, 'mean_prediction': 1.01},
          {'low': 4.9, 'high': 5.0, 'count': 57, 'mean_label': 4.7, 'mean_prediction': 4.94},
          {'low': 5.0, 'high': _INF, 'count': 53, 'mean_label': 4.8, 'mean_prediction': 5.0}]


def _strict_load(path):
  with open(path, encoding='utf-8') as f:
    return json.load(f, parse_constant=lambda name: pytest.fail(f'{name} in {path}'))


def test_the_summary_file_is_strict_json_with_open_bounds_as_null(tmp_path):
  summary = {'models': [{'calibration': _buckets(), 'metrics': {'rmse': float('nan'),
                                                                 'mae': 0.7}}],
             'seconds': (1.5, -_INF)}
  run_summary.write(summary, str(tmp_path))
  written = _strict_load(os.path.join(tmp_path, run_summary.SUMMARY_FILE))
  model = written['models'][0]
  assert [b['high'] for b in model['calibration']] == [1.1, 5.0, None]
  assert model['metrics'] == {'rmse': None, 'mae': 0.7}
  assert written['seconds'] == [1.5, None]
  assert summary['models'][0]['calibration'][2]['high'] == _INF  # the caller's dict is kept


@pytest.mark.parametrize('open_bound', [_INF, None])  # in memory, and read back from the file
def test_open_buckets_are_drawn_as_wide_as_the_others(open_bound):
  buckets = _buckets()
  buckets[2]['high'] = open_bound
  buckets.insert(0, {'low': -open_bound if open_bound else None, 'high': 1.0, 'count': 2,
                     'mean_label': 1.0, 'mean_prediction': 1.0})
  bounds = report._closed(buckets)  # pylint: disable=protected-access
  assert bounds == [(pytest.approx(0.9), 1.0), (1.0, 1.1), (4.9, 5.0), (5.0, pytest.approx(5.1))]


def test_the_calibration_chart_draws_every_bucket_and_the_diagonal(tmp_path, monkeypatch):
  drawn = {}
  save = report._save  # pylint: disable=protected-access

  def keep(fig, folder, name):
    left, right = fig.axes
    drawn['diagonal'] = [float(x) for x in left.lines[0].get_xdata()]
    drawn['bars'] = [(p.get_x(), p.get_width(), p.get_height()) for p in right.patches]
    return save(fig, folder, name)

  monkeypatch.setattr(report, '_save', keep)
  with warnings.catch_warnings():
    warnings.simplefilter('error', RuntimeWarning)  # matplotlib's NaN bar width warned here
    name = report._calibration_chart('cf', _buckets(), str(tmp_path))  # pylint: disable=protected-access
  assert os.path.getsize(os.path.join(tmp_path, name)) > 0
  assert drawn['diagonal'] == [1.0, pytest.approx(5.1)]
  assert [(round(x, 6), round(w, 6), h) for x, w, h in drawn['bars']] == [
      (1.0, 0.1, 8), (4.9, 0.1, 57), (5.0, 0.1, 53)]


def test_a_summary_that_is_not_json_is_a_clear_error(tmp_path, capsys):
  (tmp_path / run_summary.SUMMARY_FILE).write_text('{"status": "succ', encoding='utf-8')
  assert report.main([str(tmp_path)]) == 2
  assert f'{tmp_path / run_summary.SUMMARY_FILE}: not a run summary' in capsys.readouterr().err


def test_data_table_shows_dates_and_says_what_a_release_year_of_0_is():
  from tensorflow_metadata.proto.v0 import statistics_pb2  # pylint: disable=import-outside-toplevel
  timestamps = statistics_pb2.NumericStatistics(min=874724710, max=893286638, mean=8.8e8)
  years = statistics_pb2.NumericStatistics(min=0, max=1998, mean=1987.7, num_zeros=9)
  years.common_stats.num_non_missing = 80_000
  known = statistics_pb2.NumericStatistics(min=1922, max=1998, mean=1988.0)
  known.common_stats.num_non_missing = 20_000
  detail = report._numeric_detail  # pylint: disable=protected-access
  assert detail('timestamp', timestamps) == '1997-09-20 to 1998-04-22 (UTC)'
  assert detail('release_year', years) == (
      'mean 1987.700, min 0, max 1998; 9 ratings are of movies with no release date '
      '(written as 0, and counted in the mean)')
  assert detail('release_year', known) == 'mean 1988.000, min 1922, max 1998'
  assert detail('age', timestamps).startswith('mean 880000000.000, min 8.74725e+08')


def test_the_rating_tables_ndcg_is_labelled_apart_from_the_lists_ndcg(tmp_path):
  model = {'name': 'collaborative_filtering', 'metrics': {'rmse': 0.9, 'ndcg@10': 0.93},
           'blessed': False, 'why_not_pushed': 'not blessed'}
  section = report._model_section(  # pylint: disable=protected-access
      model, {'rmse_upper_bound': 1.05, 'max_rmse_increase_vs_baseline': 0.01}, str(tmp_path))
  assert '<th>rated NDCG@10</th>' in section
  assert 'Rated NDCG@k orders each user&#x27;s eval-rated movies by predicted rating' in section
