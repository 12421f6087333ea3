"""The run summary: what each model scored, whether it was blessed, and what was pushed.

Read back from ML Metadata and the Evaluator's and Pusher's artifacts, not from the runner's
memory, so it also reports components that were served from the cache. Written atomically to
`<output-dir>/run_summary.json`.
"""

import datetime
import json
import math
import os
from typing import Dict, List, Optional, Sequence

import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata as tfx_metadata
from tfx.utils import path_utils

from components import atomic_files
from components.evaluation import eval_config as evaluation
from components.data import ingestion
from components.evaluation import ranking_metrics as ranking
from components.models import trainer as trainer_module
from pipeline import configs
from pipeline import example_lists
from pipeline import pipeline as pipeline_def
from pipeline.progress import ComponentProgress
from serving import model_config

SUMMARY_FILE = 'run_summary.json'
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_EXECUTION_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


class _Metadata:
  """Read-only questions to the run's ML Metadata store."""

  def __init__(self, settings: configs.PipelineSettings, since: datetime.datetime):
    config = tfx_metadata.sqlite_metadata_connection_config(settings.metadata_path)
    self.store = metadata_store.MetadataStore(config)
    self.pipeline_name = settings.pipeline_name
    self.since_ms = int(since.timestamp() * 1000) - 1000

  def execution(self, node_id: str) -> Optional[metadata_store_pb2.Execution]:
    """The newest execution of `node_id` that started in this run."""
    context = self.store.get_context_by_type_and_name('node', f'{self.pipeline_name}.{node_id}')
    if context is None:
      return None
    executions = [e for e in self.store.get_executions_by_context(context.id)
                  if e.create_time_since_epoch >= self.since_ms]
    return max(executions, key=lambda e: e.id) if executions else None

  def outputs(self, execution: metadata_store_pb2.Execution) -> Dict[str, metadata_store_pb2.Artifact]:
    """The execution's output artifacts by output key."""
    return self._artifacts(execution, _OUTPUT_EVENTS)

  def inputs(self, execution: metadata_store_pb2.Execution) -> Dict[str, metadata_store_pb2.Artifact]:
    """The execution's input artifacts by input key."""
    return self._artifacts(execution, (metadata_store_pb2.Event.INPUT,))

  def _artifacts(self, execution, event_types) -> Dict[str, metadata_store_pb2.Artifact]:
    events = [e for e in self.store.get_events_by_execution_ids([execution.id])
              if e.type in event_types]
    artifacts = {a.id: a for a in self.store.get_artifacts_by_id([e.artifact_id for e in events])}
    result = {}
    for event in events:
      key = event.path.steps[0].key if event.path.steps else ''
      result[key] = artifacts[event.artifact_id]
    return result


def _custom(artifact: metadata_store_pb2.Artifact, key: str):
  value = artifact.custom_properties.get(key)
  if value is None:
    return None
  return getattr(value, value.WhichOneof('value'))


_METRIC_NAMES = {evaluation.RMSE: 'rmse', evaluation.MAE: 'mae', evaluation.MSE: 'mse',
                 evaluation.EXAMPLE_COUNT: 'example_count', evaluation.MEAN_LABEL: 'mean_label',
                 evaluation.MEAN_PREDICTION: 'mean_prediction', evaluation.NDCG: 'ndcg'}
OVERALL = 'overall'


def _slice_name(slice_key) -> str:
  """'overall', or 'feature:value' (TFMA's single-feature slices)."""
  parts = []
  for key in slice_key.single_slice_keys:
    value = key.WhichOneof('kind')
    value = getattr(key, value) if value else ''
    parts.append(f'{key.column}:{value.decode() if isinstance(value, bytes) else value}')
  return ','.join(parts) or OVERALL


def _metrics(evaluation_uri: str) -> Dict[str, Dict[str, Dict[str, float]]]:
  """Metrics by model ('candidate', and 'baseline' when there was one), then by slice."""
  by_model: Dict[str, Dict[str, Dict[str, float]]] = {}
  for metrics in tfma.load_metrics(evaluation_uri):
    slice_name = _slice_name(metrics.slice_key)
    for entry in metrics.metric_keys_and_values:
      key = entry.key
      if key.is_diff or key.name not in _METRIC_NAMES or not entry.value.HasField('double_value'):
        continue
      name = _METRIC_NAMES[key.name]
      if key.sub_key.HasField('top_k'):
        name += f'@{key.sub_key.top_k.value}'
      model = 'baseline' if key.model_name == 'baseline' else 'candidate'
      value = entry.value.double_value.value
      by_model.setdefault(model, {}).setdefault(slice_name, {})[name] = (
          int(value) if key.name == evaluation.EXAMPLE_COUNT else value)
  return by_model


def _ranking(evaluation_uri: str) -> Dict[str, Dict]:
  """The overall slice's top-K figures by model ('candidate', 'baseline'): the model's
  `ranking` fields, `most_popular`'s on the same users, and the precision / recall curves."""
  by_model: Dict[str, Dict] = {}
  prefixes = {f'{ranking.RANKING}/': None, f'{ranking.MOST_POPULAR}/': ranking.MOST_POPULAR}
  for metrics in tfma.load_metrics(evaluation_uri):
    if metrics.slice_key.single_slice_keys:
      continue
    for entry in metrics.metric_keys_and_values:
      key = entry.key
      if key.is_diff or not entry.value.HasField('double_value'):
        continue
      model = by_model.setdefault('baseline' if key.model_name == 'baseline' else 'candidate',
                                  {ranking.MOST_POPULAR: {}, 'curve': {}})
      value = entry.value.double_value.value
      if key.name in (ranking.PRECISION_CURVE, ranking.RECALL_CURVE):
        curve = model['curve'].setdefault(key.name.split('/')[-1], {})
        curve[key.sub_key.top_k.value] = value
        continue
      for prefix, group in prefixes.items():
        field = key.name[len(prefix):]
        if key.name.startswith(prefix) and field in ranking.SUMMARY_FIELDS:
          target = model[group] if group else model
          target[field] = int(value) if field == 'users' else value
  for model in by_model.values():
    model['curve'] = {name: [points[k] for k in sorted(points)]
                      for name, points in model['curve'].items()}
  return by_model


def _calibration(evaluation_uri: str) -> List[Dict[str, float]]:
  """The candidate's overall calibration plot: per prediction bucket with ratings in it, the
  bucket's bounds, how many ratings, their mean rating and mean prediction. TFMA's first and
  last buckets are open (-inf and +inf bounds; predictions clipped to 5 land in the last one):
  `write` stores those bounds as null."""
  buckets = []
  for plots in tfma.load_plots(evaluation_uri):
    if plots.slice_key.single_slice_keys:
      continue
    for entry in plots.plot_keys_and_values:
      if entry.key.model_name == 'baseline' or not entry.value.HasField('calibration_histogram_buckets'):
        continue
      for bucket in entry.value.calibration_histogram_buckets.buckets:
        count = bucket.num_weighted_examples.value
        if count > 0:
          buckets.append({'low': bucket.lower_threshold_inclusive,
                          'high': bucket.upper_threshold_exclusive, 'count': int(count),
                          'mean_label': bucket.total_weighted_label.value / count,
                          'mean_prediction':
                              bucket.total_weighted_refined_prediction.value / count})
  return buckets


def _validation_failures(evaluation_uri: str) -> List[str]:
  result = tfma.load_validation_result(evaluation_uri)
  failures = []
  for per_slice in result.metric_validations_per_slice:
    for failure in per_slice.failures:
      key, threshold = failure.metric_key, failure.metric_threshold
      value = (f'{failure.metric_value.double_value.value:.4f}'
               if failure.metric_value.HasField('double_value') else 'missing')
      if threshold.HasField('change_threshold'):
        change = threshold.change_threshold
        allowed = change.absolute.value
        limit = (f'fall by at most {-allowed:.4f}'
                 if change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
                 else f'rise by at most {allowed:.4f}')
        failures.append(f'{key.name} changed by {value} against the baseline model; it may '
                        f'{limit}')
      else:
        bounds = threshold.value_threshold
        rule = ' and '.join(
            [f'>= {bounds.lower_bound.value:.4f}'] * bounds.HasField('lower_bound')
            + [f'<= {bounds.upper_bound.value:.4f}'] * bounds.HasField('upper_bound'))
        failures.append(f'{key.name} {value}, must be {rule}')
  return failures or ([] if result.validation_ok else ['validation failed'])


def _served_version(settings: configs.PipelineSettings, model_name: str) -> Optional[str]:
  """The highest numeric version under the model's serving folder (what TF Serving serves)."""
  return model_config.latest_version_path(os.path.join(settings.serving_dir, model_name))


def _trained_model_uri(md: _Metadata, trainer_id: str) -> Optional[str]:
  trainer = md.execution(trainer_id)
  model = md.outputs(trainer).get('model') if trainer is not None else None
  return model.uri if model is not None else None


def _training(md: _Metadata, trainer_id: str) -> Optional[Dict]:
  """What the Trainer of this run reported (components/models/trainer.py's training stats:
  epochs, seconds, the warm start), if it ran."""
  trainer = md.execution(trainer_id)
  run = md.outputs(trainer).get('model_run') if trainer is not None else None
  path = os.path.join(run.uri, trainer_module.TRAINING_STATS) if run is not None else None
  if path is None or not os.path.isfile(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def _example_lists(model_uri: Optional[str], users: List[Dict],
                   previous: Dict) -> Optional[List[Dict]]:
  """The example users' top 10 from this run's trained model (candidate), if it trained; the
  previous summary's where it had the same model and users (a cached re-run) and the same
  kinds of lists."""
  if model_uri is None or not users:
    return None
  if (previous.get('model_uri') == model_uri and previous.get('example_users') == users
      and previous.get('example_lists')
      and all('as_new_user' in lists for lists in previous['example_lists'])):
    return previous['example_lists']
  return example_lists.top_lists(path_utils.serving_model_path(model_uri), users)


def _model_summary(md: _Metadata, settings: configs.PipelineSettings, name: str,
                   example_users: List[Dict], previous: Dict) -> Dict:
  ids = pipeline_def.node_ids(name)
  model_uri = _trained_model_uri(md, ids['trainer'])
  summary = {'name': name, 'metrics': {}, 'blessed': False, 'pushed': False,
             'pushed_version_path': None, 'why_not_pushed': None, 'baseline_model': None,
             'model_uri': model_uri, 'training': _training(md, ids['trainer']),
             'example_lists': _example_lists(model_uri, example_users, previous)}
  evaluator = md.execution(ids['evaluator'])
  if evaluator is None:
    summary['why_not_pushed'] = 'the run stopped before this model was evaluated'
    return summary
  outputs = md.outputs(evaluator)
  if 'evaluation' in outputs:
    summary['evaluation_uri'] = outputs['evaluation'].uri
    by_model = _metrics(outputs['evaluation'].uri)
    candidate = by_model.get('candidate', {})
    summary['metrics'] = candidate.get(OVERALL, {})
    summary['baseline_metrics'] = by_model.get('baseline', {}).get(OVERALL)
    summary['slices'] = {name: values for name, values in sorted(candidate.items())
                         if name != OVERALL}
    summary['calibration'] = _calibration(outputs['evaluation'].uri)
    rankings = _ranking(outputs['evaluation'].uri)
    summary['ranking'] = rankings.get('candidate')
    if summary['ranking'] is not None:
      summary['ranking']['baseline'] = {
          k: v for k, v in rankings.get('baseline', {}).items() if k in ranking.SUMMARY_FIELDS
      } or None
  if 'blessing' in outputs:
    summary['blessed'] = bool(_custom(outputs['blessing'], 'blessed'))
  baseline = md.inputs(evaluator).get('baseline_model')
  summary['baseline_model'] = baseline.uri if baseline is not None else None
  if not summary['blessed'] and 'evaluation' in outputs:
    summary['why_not_pushed'] = 'not blessed: ' + '; '.join(
        _validation_failures(outputs['evaluation'].uri))
  pusher = md.execution(ids['pusher'])
  pushed = md.outputs(pusher).get('pushed_model') if pusher is not None else None
  if pushed is not None and _custom(pushed, 'pushed'):
    summary['pushed'] = True
    summary['pushed_version_path'] = _custom(pushed, 'pushed_destination')
  elif summary['blessed'] and summary['why_not_pushed'] is None:
    summary['why_not_pushed'] = 'the run stopped before the push'
  summary['serving_version_path'] = _served_version(settings, name)
  return summary


def build(settings: configs.PipelineSettings, prepared: ingestion.PreparedData,
          model_names: Sequence[str], progress: ComponentProgress,
          started_at: datetime.datetime, pipeline_seconds: float, ingestion_seconds: float,
          error: Optional[str]) -> Dict:
  md = _Metadata(settings, started_at)
  components = []
  for node_id in progress.order:
    execution = md.execution(node_id)
    components.append({
        'id': node_id, 'seconds': progress.durations.get(node_id),
        'start_time': round(progress.start_times[node_id], 3),
        'state': _EXECUTION_STATES.get(execution.last_known_state, 'UNKNOWN')
                 if execution is not None else 'NOT_RECORDED'})
  failed = [c['id'] for c in components if c['state'] == 'FAILED']
  if failed and error is None:  # e.g. a resolver: the local runner logs it and goes on
    error = f'{", ".join(failed)} failed (see the log)'
  artifacts = {}
  for node_id, key in (('StatisticsGen', 'statistics'), ('ExampleValidator', 'anomalies')):
    execution = md.execution(node_id)
    artifact = md.outputs(execution).get(key) if execution is not None else None
    if artifact is not None:
      splits = artifact.properties.get('split_names')
      artifacts[key] = {'uri': artifact.uri,
                        'splits': json.loads(splits.string_value) if splits else []}
  if 'statistics' in artifacts:  # TFDV's sample_rate: the statistics describe this share
    artifacts['statistics']['sample_rate'] = settings.statistics_sample_rate(
        prepared.num_ratings)
  last = _last_summary(settings.output_dir)
  example_users = [] if error else _example_users(prepared.splits_dir, last)
  previous = {m['name']: m | {'example_users': last.get('example_users')}
              for m in last.get('models', []) if isinstance(m, dict) and 'name' in m}
  return {
      'status': 'failed' if error else 'succeeded',
      'error': error,
      'started_at': started_at.isoformat(timespec='seconds'),
      'seconds': {'ingestion': round(ingestion_seconds, 2),
                  'pipeline': round(pipeline_seconds, 2)},
      'output_dir': settings.output_dir,
      'data': prepared.info | {'input_base': prepared.input_base,
                               'splits_dir': prepared.splits_dir},
      'thresholds': {'rmse_upper_bound': settings.rmse_upper_bound,
                     'max_rmse_increase_vs_baseline': settings.max_rmse_increase,
                     'ndcg_at_least_most_popular': settings.ranking_must_beat_popularity,
                     'max_ndcg_decrease_vs_baseline': settings.max_ndcg_decrease},
      'components': components,
      'artifacts': artifacts,
      'example_users': example_users,
      'models': [_model_summary(md, settings, name, example_users, previous.get(name, {}))
                 for name in model_names],
  }


def _last_summary(output_dir: str) -> Dict:
  """The summary of the last run in `output_dir` ({} if none can be read)."""
  try:
    with open(os.path.join(output_dir, SUMMARY_FILE), encoding='utf-8') as f:
      last = json.load(f)
  except (OSError, ValueError):
    return {}
  return last if isinstance(last, dict) else {}


def _example_users(splits_dir: str, last: Dict) -> List[Dict]:
  """The seeded example users of the prepared splits: the last run's where it read the same
  folder (named by a fingerprint of its sources and options, and with spans by its eval span:
  a cached re-run), so that a re-run does not stream the splits again."""
  if last.get('data', {}).get('splits_dir') == splits_dir and last.get('example_users'):
    return last['example_users']
  return example_lists.pick_users(splits_dir)


def _strict_json(value):
  """`value` with every infinite or NaN float as None: JSON has no Infinity or NaN, and
  strict readers (JavaScript's JSON.parse, jq) refuse a file that holds them."""
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if isinstance(value, dict):
    return {k: _strict_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_strict_json(v) for v in value]
  return value


def write(summary: Dict, output_dir: str) -> str:
  return atomic_files.write(os.path.join(output_dir, SUMMARY_FILE),
                            json.dumps(_strict_json(summary), indent=2, allow_nan=False))


def render(summary: Dict) -> str:
  """A short human summary of the run."""
  lines = [f'Run {summary["status"]} in {summary["seconds"]["pipeline"]:.1f} s '
           f'(+{summary["seconds"]["ingestion"]:.1f} s data preparation).']
  if summary['error']:
    lines.append(f'  {summary["error"]}')
  lines += [f'  {note}' for note in ingestion.data_notes(summary.get('data', {}))]
  for model in summary['models']:
    m = model['metrics']
    score = (f'RMSE {m["rmse"]:.4f}  MAE {m["mae"]:.4f}  on {m["example_count"]} ratings'
             if {'rmse', 'mae', 'example_count'} <= m.keys() else 'not evaluated')
    top = model.get('ranking') or {}
    if 'ndcg@10' in top:
      popular = top.get(ranking.MOST_POPULAR, {})
      score += (f'; top-10 NDCG {top["ndcg@10"]:.4f} P {top["precision@10"]:.4f} '
                f'(most-popular {popular.get("ndcg@10", float("nan")):.4f} / '
                f'{popular.get("precision@10", float("nan")):.4f}) over {top["users"]} users')
    if model['pushed']:
      outcome = f'blessed, pushed to {model["pushed_version_path"]}'
    else:
      outcome = ('blessed, ' if model['blessed'] else '') + f'not pushed: {model["why_not_pushed"]}'
    lines.append(f'  {model["name"]:24s} {score}; {outcome}')
    warm = (model.get('training') or {}).get('warm_start')
    if warm:
      lines.append(f'  {"":24s} ' + (
          f'warm start from the served model, {model["training"]["epochs"]} epochs'
          if 'from' in warm else f'trained from scratch: no warm start: {warm["skipped"]}'))
  return '\n'.join(lines)
