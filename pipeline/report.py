"""The run report: one static HTML page with PNG plots, readable offline in any browser.

    python -m pipeline.report <output-dir>      (also written at the end of every local run)

Built from a finished run's `run_summary.json` and the artifacts it names (TFDV statistics and
anomalies, TFMA's evaluation), without rerunning anything. Writes `<output-dir>/report/`
(`index.html` and its images) into a temporary folder first and swaps it in whole, so a reader
never sees half a report.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import datetime
import html
import json
import math
import os
import sys
from typing import Dict, List, Optional, Sequence

from components import atomic_files
from components.data import features

REPORT_DIR = 'report'
SLICE_FEATURES = ('gender', 'occupation', 'age_group', 'genre', 'user_activity',
                  'movie_popularity')
_METRIC_COLUMNS = (('rmse', 'RMSE'), ('mae', 'MAE'), ('mse', 'MSE'),
                   ('example_count', 'ratings'), ('mean_label', 'mean rating'),
                   ('mean_prediction', 'mean prediction'), ('ndcg@5', 'rated NDCG@5'),
                   ('ndcg@10', 'rated NDCG@10'))
# What the rating tables' NDCG is, so it is not read as the top-10 lists' NDCG@10 below them.
_RATED_NDCG_NOTE = ('Rated NDCG@k orders each user\'s eval-rated movies by predicted rating '
                    '(gain: the rating given): how well the model ranks what the user did rate. '
                    'The NDCG@10 of the top-10 lists is in the recommendations table.')


class ReportError(RuntimeError):
  """The output directory does not hold a finished run."""


def _format(value) -> str:
  if value is None:
    return ''
  if isinstance(value, bool):
    return 'yes' if value else 'no'
  if isinstance(value, int):
    return f'{value:,}'
  if isinstance(value, float):
    return f'{value:.4f}'
  return str(value)


def _table(header: Sequence[str], rows: List[Sequence], table_id: Optional[str] = None) -> str:
  attrs = f' id="{html.escape(table_id)}"' if table_id else ''
  head = ''.join(f'<th>{html.escape(h)}</th>' for h in header)
  body = ''.join('<tr>' + ''.join(f'<td>{html.escape(_format(v))}</td>' for v in row) + '</tr>'
                 for row in rows)
  return f'<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _plt():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def _save(fig, folder: str, name: str) -> str:
  fig.tight_layout()
  fig.savefig(os.path.join(folder, name), dpi=90)
  _plt().close(fig)
  return name


def _value_order():
  """Bucketed slice values in their natural order (the rest sort alphabetically)."""
  from components.evaluation import slicing  # pylint: disable=import-outside-toplevel
  return {slicing.AGE_GROUP: list(slicing.age_group_names()),
          slicing.USER_ACTIVITY: [name for _, name in slicing.USER_ACTIVITY_BUCKETS],
          slicing.MOVIE_POPULARITY: [name for _, name in slicing.MOVIE_POPULARITY_BUCKETS]}


def _slices_by_feature(slices: Dict[str, Dict]) -> Dict[str, List]:
  grouped: Dict[str, List] = {}
  for name, values in slices.items():
    feature, _, value = name.partition(':')
    grouped.setdefault(feature, []).append((value, values))
  order = {f: i for i, f in enumerate(SLICE_FEATURES)}
  natural = _value_order()
  rank = lambda feature, value: (natural[feature].index(value)
                                 if value in natural.get(feature, []) else 99, value)
  return {f: sorted(grouped[f], key=lambda row, f=f: rank(f, row[0]))
          for f in sorted(grouped, key=lambda f: (order.get(f, 99), f))}


def _slice_chart(model_name: str, grouped: Dict[str, List], overall: Optional[float],
                 folder: str) -> Optional[str]:
  """RMSE per slice value, one panel per feature, each as tall as its number of values, with
  each bar's number of ratings beside it (a slice of a few ratings says little)."""
  if not grouped:
    return None
  plt = _plt()
  heights = [len(rows) + 1.5 for rows in grouped.values()]
  fig, axes = plt.subplots(len(grouped), 1, figsize=(9, 0.6 + 0.24 * sum(heights)),
                           squeeze=False, gridspec_kw={'height_ratios': heights})
  for axis, (feature, rows) in zip(axes[:, 0], grouped.items()):
    labels = [value for value, _ in rows]
    rmse = [values.get('rmse') or 0.0 for _, values in rows]
    bars = axis.barh(range(len(rows)), rmse, color='#4c72b0')
    axis.bar_label(bars, [f'{values.get("example_count", 0):,}' for _, values in rows],
                   padding=2, fontsize=7, color='#555555')
    axis.set_yticks(range(len(rows)), labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, max(rmse + [overall or 0.0]) * 1.12 or 1.0)
    if overall is not None:
      axis.axvline(overall, color='#c44e52', linestyle='--', linewidth=1)
    note = 'dashed: overall RMSE; ' if overall is not None else ''
    axis.set_title(f'RMSE by {feature} ({note}beside each bar: its ratings)', fontsize=10)
  return _save(fig, folder, f'{model_name}_slices.png')


def _closed(buckets: List[Dict]) -> List[tuple]:
  """Each calibration bucket's (low, high) with TFMA's open first and last buckets (a bound of
  None or +-inf) drawn as wide as the others."""
  finite = lambda v: v is not None and math.isfinite(v)
  widths = sorted(b['high'] - b['low'] for b in buckets if finite(b['low']) and finite(b['high']))
  width = widths[len(widths) // 2] if widths else 0.1
  bounds = []
  for b in buckets:
    low = b['low'] if finite(b['low']) else None
    high = b['high'] if finite(b['high']) else None
    if low is None:
      low = (high if high is not None else b['mean_prediction']) - width
    if high is None:
      high = low + width
    bounds.append((low, high))
  return bounds


def _calibration_chart(model_name: str, buckets: List[Dict], folder: str) -> Optional[str]:
  if not buckets:
    return None
  plt = _plt()
  fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
  bounds = _closed(buckets)
  low, high = bounds[0][0], bounds[-1][1]
  left.plot([low, high], [low, high], color='grey', linestyle='--', label='perfect')
  left.scatter([b['mean_prediction'] for b in buckets], [b['mean_label'] for b in buckets],
               s=[max(4.0, 200.0 * b['count'] / max(c['count'] for c in buckets))
                  for b in buckets], color='#dd8452', label='bucket (size: ratings)')
  left.set_xlabel('mean predicted rating')
  left.set_ylabel('mean actual rating')
  left.set_title('Calibration', fontsize=10)
  left.legend(fontsize=8)
  right.bar([lo for lo, _ in bounds], [b['count'] for b in buckets],
            width=[hi - lo for lo, hi in bounds], align='edge', color='#55a868')
  right.set_xlabel('predicted rating')
  right.set_ylabel('ratings')
  right.set_title('Predictions', fontsize=10)
  return _save(fig, folder, f'{model_name}_calibration.png')


_RANKING_COLUMNS = (('precision@10', 'P@10'), ('recall@10', 'R@10'), ('ndcg@10', 'NDCG@10'),
                    ('map@10', 'MAP@10'), ('coverage', 'coverage'), ('users', 'users'))


def _ranking_chart(model_name: str, curve: Dict, folder: str) -> Optional[str]:
  """Precision and recall of the `recommend` lists at k = 1..50."""
  if not curve.get('precision'):
    return None
  plt = _plt()
  fig, axis = plt.subplots(figsize=(6, 3.4))
  ks = range(1, len(curve['precision']) + 1)
  axis.plot(ks, curve['precision'], label='precision@k', color='#4c72b0')
  axis.plot(ks, curve['recall'], label='recall@k', color='#dd8452')
  axis.set_xlabel('k (length of the list)')
  axis.set_title('Precision and recall of the top-k lists', fontsize=10)
  axis.legend(fontsize=8)
  return _save(fig, folder, f'{model_name}_precision_recall.png')


def _ranking_section(model: Dict, thresholds: Dict, folder: str) -> List[str]:
  """The lists users get: the model's top-10 figures beside most-popular's and the baseline's."""
  ranking = model.get('ranking')
  if not ranking:
    return []
  name = model['name']
  rows = [('candidate',) + tuple(ranking.get(k) for k, _ in _RANKING_COLUMNS),
          ('most popular (same users)',) + tuple(ranking['most_popular'].get(k)
                                                 for k, _ in _RANKING_COLUMNS)]
  if ranking.get('baseline'):
    rows.append(('baseline (latest blessed)',) + tuple(ranking['baseline'].get(k)
                                                       for k, _ in _RANKING_COLUMNS))
  rule = ('Blessing also needs NDCG@10 '
          + ('at least most-popular\'s on the same users and ' if
             thresholds.get('ndcg_at_least_most_popular') else '')
          + f'at most {thresholds.get("max_ndcg_decrease_vs_baseline")} below the latest '
          'blessed model\'s.')
  parts = ['<h3>Recommendations (top 10 of <code>recommend</code> per eval user, among the '
           'movies the user did not rate in training; relevant: the user\'s eval ratings)</h3>',
           f'<p>{html.escape(rule)}</p>',
           _table(('lists of',) + tuple(label for _, label in _RANKING_COLUMNS), rows,
                  f'ranking-{name}')]
  chart = _ranking_chart(name, ranking.get('curve') or {}, folder)
  if chart:
    parts.append(f'<img src="{chart}" alt="Precision and recall at k of {html.escape(name)}">')
  return parts


HIT = ' \u2713'  # marks a recommended movie the user rated in eval


def _lists_section(summary: Dict) -> List[str]:
  """Three seeded eval users: their best-rated training movies beside each model's top 10, as
  themselves and as a new user who sends only those movies' ratings."""
  users = summary.get('example_users') or []
  models = [m for m in summary.get('models', []) if m.get('example_lists')]
  if not users or not models:
    return []
  parts = ['<h2>What three users get</h2>',
           f'<p>Three seeded eval users: their five best-rated training movies, and each trained '
           f'model\'s top 10 from <code>recommend</code> (the movies they rated in training '
           f'left out); then, as a new user who sent only those five ratings, its top 10 from '
           f'<code>recommend_new_user</code>.{html.escape(HIT)} marks a movie the user rated in '
           f'the eval split.</p>']
  for i, user in enumerate(users):
    columns, names = [[f'{b["title"]} ({b["rating"]:g})' for b in user['best_rated']]], []
    for key, suffix in (('top', ''), ('as_new_user', ', as a new user')):
      for model in models:
        top = model['example_lists'][i].get(key)
        if top is not None:  # (a summary of before recommend_new_user has none)
          columns.append([m['title'] + (HIT if m['hit'] else '') for m in top])
          names.append(model['name'] + suffix)
    depth = max(len(c) for c in columns)
    rows = [(rank + 1,) + tuple(c[rank] if rank < len(c) else '' for c in columns)
            for rank in range(depth)]
    hits = ', '.join(f'{m["name"]} {sum(x["hit"] for x in m["example_lists"][i]["top"])}'
                     for m in models)
    parts += [f'<h3>User {html.escape(user["user_id"])}: {user["training_ratings"]:,} training '
              f'ratings, {len(user["eval_movie_ids"]):,} in eval; hits in the top 10: '
              f'{html.escape(hits)}</h3>',
              _table(('#', 'best rated in training') + tuple(names), rows,
                     f'lists-user-{user["user_id"]}')]
  return parts


def _numeric_detail(name: str, stats) -> str:
  """A numeric feature's TFDV summary as a reader wants it: timestamps as UTC dates, and
  release years without the 0 that stands for an unknown date."""
  if name == features.TIMESTAMP:
    day = lambda seconds: datetime.datetime.fromtimestamp(
        seconds, datetime.timezone.utc).strftime('%Y-%m-%d')
    return f'{day(stats.min)} to {day(stats.max)} (UTC)'
  detail = f'mean {stats.mean:.3f}, min {stats.min:g}, max {stats.max:g}'
  if name == features.RELEASE_YEAR and stats.common_stats.num_non_missing and stats.num_zeros:
    detail += (f'; {stats.num_zeros:,} ratings are of movies with no release date (written as '
               f'0, and counted in the mean)')
  return detail


def _statistics(summary: Dict, folder: str) -> str:
  """The data section: TFDV statistics per split, the rating distribution, the anomalies."""
  artifact = summary.get('artifacts', {}).get('statistics')
  if not artifact:
    return '<p>No statistics were recorded for this run.</p>'
  import tensorflow_data_validation as tfdv  # pylint: disable=import-outside-toplevel
  parts, histograms = [], {}
  rate = artifact.get('sample_rate', 1.0)
  for split in artifact['splits']:
    path = os.path.join(artifact['uri'], f'Split-{split}', 'FeatureStats.pb')
    if not os.path.exists(path):
      continue
    dataset = tfdv.load_stats_binary(path).datasets[0]
    rows = []
    for feature in dataset.features:
      name = feature.path.step[0] if feature.path.step else feature.name
      stats = feature.num_stats if feature.HasField('num_stats') else feature.string_stats
      common = stats.common_stats
      detail = ''
      if feature.HasField('num_stats'):
        detail = _numeric_detail(name, stats)
        if name == 'rating' and stats.histograms:
          histograms[split] = stats.histograms[0]
      elif feature.HasField('string_stats'):
        detail = f'{stats.unique:,} distinct values'
      rows.append((name, common.num_non_missing, common.num_missing, detail))
    described = (f'{dataset.num_examples:,} ratings' if rate >= 1 else
                 f'a random sample of {dataset.num_examples:,} ratings (TFDV sample_rate '
                 f'{rate:.3g}, --statistics-sample)')
    parts.append(f'<h3>Split {html.escape(split)}: {described}</h3>'
                 + _table(('feature', 'present', 'missing', 'values'), rows,
                          f'statistics-{split}'))
  if histograms:
    plt = _plt()
    fig, axis = plt.subplots(figsize=(6, 3))
    # Each split's share of its ratings per TFDV histogram bucket, side by side inside the
    # bucket's own span: shares compare splits of different sizes, and each bar stands over
    # the ratings it counts.
    share = 1.0 / len(histograms)
    for i, (split, histogram) in enumerate(sorted(histograms.items())):
      total = sum(b.sample_count for b in histogram.buckets) or 1.0
      buckets = [b for b in histogram.buckets if b.sample_count > 0]
      axis.bar([b.low_value + i * share * (b.high_value - b.low_value) for b in buckets],
               [100.0 * b.sample_count / total for b in buckets],
               width=[share * (b.high_value - b.low_value) for b in buckets], align='edge',
               label=split)
    axis.set_xlabel('rating (TFDV histogram buckets)')
    axis.set_ylabel('% of the split')
    axis.set_title('Rating distribution', fontsize=10)
    axis.legend(fontsize=8)
    image = _save(fig, folder, 'ratings.png')
    parts.insert(0, f'<img src="{image}" alt="Rating distribution">')
  anomalies = summary.get('artifacts', {}).get('anomalies')
  if anomalies:
    from components.tfx import anomalies_gate  # pylint: disable=import-outside-toplevel
    problems = anomalies_gate.describe_anomalies(anomalies['uri'], anomalies['splits'])
    parts.append('<h3>Anomalies (ExampleValidator against the curated schema)</h3>' + (
        '<ul>' + ''.join(f'<li>{html.escape(p)}</li>' for p in problems) + '</ul>'
        if problems else '<p id="anomalies">None.</p>'))
  return ''.join(parts)


def _model_section(model: Dict, thresholds: Dict, folder: str) -> str:
  name = model['name']
  metrics, baseline = model.get('metrics') or {}, model.get('baseline_metrics')
  rows = [('candidate',) + tuple(metrics.get(k) for k, _ in _METRIC_COLUMNS)]
  if baseline:
    rows.append(('baseline (latest blessed)',) + tuple(baseline.get(k) for k, _ in _METRIC_COLUMNS))
  if model.get('pushed'):
    verdict = f'Blessed and pushed to {model["pushed_version_path"]}.'
  elif model.get('blessed'):
    verdict = f'Blessed, not pushed: {model.get("why_not_pushed")}.'
  else:
    verdict = f'Not pushed: {model.get("why_not_pushed")}.'
  rule = (f'Blessing: overall RMSE at most {thresholds["rmse_upper_bound"]}, and at most '
          f'{thresholds["max_rmse_increase_vs_baseline"]} above the latest blessed model of '
          f'this name when there is one')
  comparison = (f' (baseline: {model["baseline_model"]})' if model.get('baseline_model')
                else ' (no blessed model of this name before: no baseline)')
  served = model.get('serving_version_path')
  parts = [f'<section class="model" id="model-{html.escape(name)}">',
           f'<h2>{html.escape(name)}</h2>',
           f'<p class="verdict">{html.escape(verdict)}</p>',
           f'<p>{html.escape(rule + comparison)}. Served now: '
           f'{html.escape(served or "nothing")}.</p>',
           _table(('model',) + tuple(label for _, label in _METRIC_COLUMNS), rows,
                  f'metrics-{name}'),
           f'<p>{html.escape(_RATED_NDCG_NOTE)}</p>']
  parts += _ranking_section(model, thresholds, folder)
  calibration = _calibration_chart(name, model.get('calibration') or [], folder)
  if calibration:
    parts.append(f'<img src="{calibration}" alt="Calibration of {html.escape(name)}">')
  grouped = _slices_by_feature(model.get('slices') or {})
  chart = _slice_chart(name, grouped, metrics.get('rmse'), folder)
  if chart:
    parts.append(f'<h3>Slices</h3><img src="{chart}" alt="RMSE by slice of {html.escape(name)}">')
  for feature, slice_rows in grouped.items():
    parts.append(f'<h4>{html.escape(feature)}</h4>' + _table(
        (feature,) + tuple(label for _, label in _METRIC_COLUMNS),
        [(value,) + tuple(values.get(k) for k, _ in _METRIC_COLUMNS)
         for value, values in slice_rows], f'slices-{name}-{feature}'))
  parts.append('</section>')
  return ''.join(parts)


_STYLE = '''body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.2em .5em;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
img{max-width:100%;display:block;margin:.5em 0}.verdict{font-weight:bold}'''


def render(summary: Dict, folder: str) -> str:
  """The page's HTML; its images are written into `folder`."""
  data = summary.get('data', {})
  seconds = summary.get('seconds', {})
  seconds_of = lambda value: None if value is None else f'{value:.1f}'
  run_rows = [(c['id'], c['state'], seconds_of(c.get('seconds')))
              for c in summary.get('components', [])]
  locations = [('output directory', summary.get('output_dir'))]
  for key, artifact in sorted(summary.get('artifacts', {}).items()):
    locations.append((key, artifact['uri']))
  for model in summary.get('models', []):
    locations += [(f'{model["name"]} evaluation', model.get('evaluation_uri')),
                  (f'{model["name"]} pushed model', model.get('pushed_version_path'))]
  body = [f'<h1>MovieLens recommender run: {html.escape(summary["status"])}</h1>',
          f'<p>Started {html.escape(summary.get("started_at", ""))}; pipeline '
          f'{seconds_of(seconds.get("pipeline"))} s, data preparation '
          f'{seconds_of(seconds.get("ingestion"))} s. Dataset {html.escape(str(data.get("dataset")))}'
          f', split {html.escape(str(data.get("split")))}.</p>']
  if summary.get('error'):
    body.append(f'<p class="verdict">Error: {html.escape(summary["error"])}</p>')
  from components.data import ingestion  # pylint: disable=import-outside-toplevel
  body += [f'<p>{html.escape(note)}</p>' for note in ingestion.data_notes(data)]
  body += _lists_section(summary)
  for model in summary.get('models', []):
    body.append(_model_section(model, summary['thresholds'], folder))
  body += ['<h2>Data</h2>', _statistics(summary, folder),
           '<h2>Run</h2>', _table(('component', 'state', 'seconds'), run_rows, 'components'),
           _table(('artifact', 'location'), locations, 'artifacts')]
  return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
          '<title>MovieLens recommender run</title>'
          f'<style>{_STYLE}</style></head><body>{"".join(body)}</body></html>\n')


def write_report(output_dir: str) -> str:
  """Writes `<output_dir>/report/index.html` from the finished run there; returns its path."""
  from pipeline import run_summary  # pylint: disable=import-outside-toplevel
  summary_path = os.path.join(output_dir, run_summary.SUMMARY_FILE)
  if not os.path.isfile(summary_path):
    raise ReportError(f'{summary_path} not found: {output_dir} holds no finished run')
  try:
    with open(summary_path, encoding='utf-8') as f:
      summary = json.load(f)
  except ValueError as e:
    raise ReportError(f'{summary_path}: not a run summary ({e})') from e
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  target = os.path.join(output_dir, REPORT_DIR)
  with atomic_files.publish_folder(target, atomic_files.REPLACE) as staged:
    try:
      page = render(summary, staged.path)
    except tf.errors.NotFoundError as e:  # the last report stays as it was
      raise ReportError(f'{summary_path} names artifacts that are gone ({e.message}): was the '
                        "run's folder moved, or its tfx/ folder deleted?") from e
    with open(os.path.join(staged.path, 'index.html'), 'w', encoding='utf-8') as f:
      f.write(page)
  return os.path.join(target, 'index.html')


def main(argv=None) -> int:
  import argparse  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('output_dir', help="a run's output directory (holds run_summary.json)")
  args = parser.parse_args(argv)
  try:
    print(write_report(args.output_dir))
  except ReportError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
