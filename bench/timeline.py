"""A replayed retraining schedule: how the models do on the ratings that come after them.

    python -m bench.timeline --data-dir ../shared/datasets/ml-100k --span month
        [--output-dir DIR] [--min-history-spans 2] [--window 0] [--epochs N] [--warm-start]
        [--no-cold-check]

Replays a MovieLens dataset as a schedule: one run of the real `local_runner.py` per span, from
the span after the first `--min-history-spans` on, each trained on the spans before it (the
last `--window`, 0: all) and evaluated on its span, all in one output folder (one ML Metadata
store, one serving folder) as a scheduler would run them. For every run it records the trained
spans, the eval span, train_max_timestamp and eval_min_timestamp, both models' eval RMSE and
NDCG@10 and most-popular's, their metrics on users new in the span, blessed or not and why, the
served version after the run, how each Trainer started, and the wall time. Then it times a
cold run of the last span in a fresh folder against the last (incremental) run. Writes
bench/results/timeline-<span>.md (with --warm-start, whose runs' Trainers start from the served
models: timeline-<span>-warm-start.md), .json and .png (the metrics over the runs). The JSON is
rewritten after every run: restarted with the same --output-dir and options, a stopped replay
goes on from the first span it has no finished run of.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

from bench import provenance
from components.data import ingestion
from components.data import spans
from components.models import model_names

RESULTS = os.path.join(provenance.PROJECT_DIR, 'bench', 'results')
COLD_USERS = 'user_activity:cold (0)'  # users without training ratings: new in the span
INCREMENTAL_FLOOR = 0.6  # an incremental run's time over a cold one's (the schedule issue)


def _run(args, output_dir: str, eval_span: int, log_path: str):
  """One local_runner.py run for `eval_span`; (exit code, wall seconds, run summary)."""
  command = [sys.executable, 'local_runner.py', '--data-dir', args.data_dir, '--span',
             args.span, '--eval-span', str(eval_span), '--window', str(args.window),
             '--output-dir', output_dir]
  if args.epochs:
    command += ['--epochs', str(args.epochs)]
  if args.sample:
    command += ['--sample', str(args.sample)]
  if args.warm_start:
    command.append('--warm-start')
  command += args.runner_arg
  started = time.monotonic()
  with open(log_path, 'w', encoding='utf-8') as log:
    code = subprocess.run(command, cwd=provenance.PROJECT_DIR, stdout=log,
                          stderr=subprocess.STDOUT, check=False).returncode
  seconds = time.monotonic() - started
  with open(os.path.join(output_dir, 'run_summary.json'), encoding='utf-8') as f:
    summary = json.load(f)
  if summary['data'].get('eval_span') != eval_span:
    raise SystemExit(f'span {eval_span}: local_runner.py exited with {code} and wrote no run '
                     f'summary of its own; its output is in {log_path}')
  return code, seconds, summary


def _span_users(input_base: str, span: int) -> List[str]:
  path = spans.split_file(input_base, span, ingestion.EVAL, ingestion.EXAMPLES_FILE)
  with open(path, encoding='utf-8', newline='') as f:
    return [row['user_id'] for row in csv.DictReader(f)]


def new_user_share(input_base: str, train_spans: List[int], eval_span: int) -> float:
  """The share of the eval span's ratings whose user has none in the training spans (from
  the prepared data itself, not from a model)."""
  known = {user for span in train_spans for user in _span_users(input_base, span)}
  users = _span_users(input_base, eval_span)
  return sum(user not in known for user in users) / max(len(users), 1)


def _record(eval_span: int, code: int, seconds: float, summary: Dict, cold: bool) -> Dict:
  data = summary['data']
  row = {'eval_span': eval_span, 'train_spans': data['train_spans'], 'exit_code': code,
         'status': summary['status'], 'error': summary['error'], 'seconds': round(seconds, 1),
         'run': 'cold' if cold else 'incremental',
         'train_ratings': data['num_ratings']['train'],
         'eval_ratings': data['num_ratings']['eval'],
         'train_max_timestamp': data['train_max_timestamp'],
         'eval_min_timestamp': data['eval_min_timestamp'],
         'new_user_share': new_user_share(data['input_base'], data['train_spans'], eval_span),
         'models': {}}
  for model in summary['models']:
    ranking = model.get('ranking') or {}
    cold_users = (model.get('slices') or {}).get(COLD_USERS) or {}
    row['most_popular_ndcg@10'] = (ranking.get('most_popular') or {}).get('ndcg@10')
    row['models'][model['name']] = {
        'rmse': model['metrics'].get('rmse'), 'ndcg@10': ranking.get('ndcg@10'),
        'baseline_rmse': (model.get('baseline_metrics') or {}).get('rmse'),
        'new_users_rmse': cold_users.get('rmse'),
        'new_users_ratings': cold_users.get('example_count'),
        'blessed': model['blessed'], 'why_not_pushed': model['why_not_pushed'],
        'served': os.path.basename(model.get('serving_version_path') or '') or None,
        'warm_start': _warm_start(model.get('training'))}
  return row


def _warm_start(training) -> str:
  """How the run's Trainer started: 'warm', 'scratch' or 'scratch: why not warm'."""
  warm = (training or {}).get('warm_start')
  if not warm:
    return 'scratch'
  return 'warm' if 'from' in warm else f'scratch: {warm["skipped"]}'


def _markdown(report: Dict) -> str:
  names = model_names.MODEL_NAMES
  short = {n: ''.join(word[0] for word in n.split('_')).upper() for n in names}  # CB, CF
  lines = [f'# Replayed schedule: {report["dataset"]} by {report["span"]}', '',
           f'Command: `{report["command"]}`  ', f'Date: {report["date"]}  ',
           f'Machine: {report["machine"]}  ', f'Commit: {report["commit"]}', '',
           'Each run trains on the spans before its eval span and is evaluated on it (every eval '
           'rating is later than every training rating). RMSE and NDCG@10 are on the eval span; '
           '"served" is the model served before the run (trained one span earlier) on the same '
           'span: the cost of serving a model that lags one span. New-user share: the share '
           'of the span\'s ratings by users with none in the training spans (from the data); '
           '(new users): RMSE on the Evaluator\'s cold-user slice, the span\'s ratings by users '
           'with no training rating (docs/timeline.md). s: the run\'s wall time; "warm": '
           'the Trainers started from the served models (--warm-start). '
           + ', '.join(f'{short[n]}: {n}' for n in names) + '.', '',
           '| eval span | trained on | train / eval ratings | new-user share | '
           + ' | '.join(f'{short[n]} RMSE (new users) | {short[n]} served RMSE | {short[n]} NDCG@10'
                        for n in names)
           + ' | most-popular NDCG@10 | blessed | s |',
           '|---|---|---:|---:|' + '---:|---:|---:|' * len(names) + '---:|---|---:|']
  fmt = lambda value: f'{value:.4f}' if isinstance(value, float) else '-'
  refusals = []
  for row in report['runs']:
    share = row.get('new_user_share')  # absent from rows of an older replay
    cells = [str(row['eval_span']), spans.describe(row['train_spans']),
             f'{row["train_ratings"]:,} / {row["eval_ratings"]:,}',
             '-' if share is None else f'{share:.0%}']
    blessed = []
    for name in names:
      model = row['models'].get(name, {})
      cells += [f'{fmt(model.get("rmse"))} ({fmt(model.get("new_users_rmse"))})',
                fmt(model.get('baseline_rmse')), fmt(model.get('ndcg@10'))]
      blessed.append(f'{short[name]} {"yes" if model.get("blessed") else "no"}')
      if not model.get('blessed'):
        refusals.append(f'- {row["eval_span"]} {name}: {model.get("why_not_pushed")}')
    warm = [short[name] for name in names
            if row['models'].get(name, {}).get('warm_start') == 'warm']
    warm = ', warm' if len(warm) == len(row['models']) else ''.join(f', warm {w}' for w in warm)
    for name, model in row['models'].items():
      if (model.get('warm_start') or 'warm').startswith('scratch:'):
        refusals.append(f'- {row["eval_span"]} {name}: trained from scratch: '
                        f'{model["warm_start"][len("scratch: "):]}')
    cells += [fmt(row.get('most_popular_ndcg@10')), ', '.join(blessed),
              f'{row["seconds"]:.0f} ({row["run"]}{warm})']
    lines.append('| ' + ' | '.join(cells) + ' |')
  ordered = all(r['eval_min_timestamp'] > r['train_max_timestamp'] for r in report['runs'])
  lines += ['', f'Every run\'s eval_min_timestamp above its train_max_timestamp: '
            f'{"yes" if ordered else "NO"}.']
  if refusals:
    lines += ['', 'Not blessed (the served model stayed), or not warm-started:', ''] + refusals
  check = report.get('cold_check')
  if check:
    lines += ['', f'Incremental against cold, span {check["eval_span"]}: the scheduled run took '
              f'{check["incremental_seconds"]:.1f} s, a cold run of the same span in a new '
              f'folder {check["cold_seconds"]:.1f} s (ratio {check["ratio"]:.2f}; the floor is '
              f'{INCREMENTAL_FLOOR}).']
  return '\n'.join(lines) + '\n'


def _plot(report: Dict, path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
  runs = report['runs']
  x = [str(r['eval_span']) for r in runs]
  figure, (rmse, ndcg) = pyplot.subplots(1, 2, figsize=(11, 3.8))
  for name in model_names.MODEL_NAMES:
    rmse.plot(x, [r['models'].get(name, {}).get('rmse') for r in runs], 'o-', label=name)
    ndcg.plot(x, [r['models'].get(name, {}).get('ndcg@10') for r in runs], 'o-', label=name)
  ndcg.plot(x, [r.get('most_popular_ndcg@10') for r in runs], 's--', label='most popular')
  for axes, title in ((rmse, 'eval RMSE on the next span'), (ndcg, 'NDCG@10 on the next span')):
    axes.set_title(title)
    axes.set_xlabel('eval span')
    axes.tick_params(axis='x', rotation=45)
    axes.legend(fontsize=8)
  figure.tight_layout()
  staging = path + '.partial.png'
  figure.savefig(staging, dpi=110)
  os.replace(staging, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', default=provenance.ML_100K_DIR)
  parser.add_argument('--span', choices=spans.PERIODS, default=spans.MONTH)
  parser.add_argument('--output-dir',
                      help='the schedule\'s one output folder (ML Metadata, serving, runs; '
                           'default: runs/timeline-<span>[-warm-start], one per period: a '
                           'weekly replay in a monthly one\'s folder would be judged against '
                           'its models)')
  parser.add_argument('--min-history-spans', type=int, default=2,
                      help='the first run trains on this many spans')
  parser.add_argument('--window', type=int, default=0,
                      help='train on the last W spans before the eval span (0: all)')
  parser.add_argument('--epochs', type=int, help='training epochs (default: the configured)')
  parser.add_argument('--sample', type=int, help='only the first N ratings (quick replays)')
  parser.add_argument('--runner-arg', action='append', default=[], metavar='ARG',
                      help='passed to local_runner.py, repeatable (e.g. --runner-arg=--max-rmse=1.5)')
  parser.add_argument('--warm-start', action='store_true',
                      help='local_runner.py --warm-start: each run\'s Trainers start from the '
                           'served models')
  parser.add_argument('--no-cold-check', action='store_true',
                      help='skip timing a cold run of the last span')
  parser.add_argument('--results', help='the Markdown result (default: '
                      'bench/results/timeline-<span>[-warm-start].md; .json and .png beside '
                      'it)')
  args = parser.parse_args(argv)
  if args.min_history_spans < 1:
    parser.error('--min-history-spans must be at least 1')
  name = f'timeline-{args.span}' + ('-warm-start' if args.warm_start else '')
  results = args.results or os.path.join(RESULTS, f'{name}.md')
  output_dir = os.path.abspath(args.output_dir or os.path.join('runs', name))
  logs = os.path.join(output_dir, 'timeline-logs')
  os.makedirs(logs, exist_ok=True)

  try:
    prepared = ingestion.prepare_examples(ingestion.IngestionOptions(
        data_dir=args.data_dir, span=args.span, window=args.window, sample=args.sample),
        output_dir)
  except (ValueError, OSError) as e:
    parser.error(str(e))
  every = sorted(int(s) for s in prepared.info['spans'])
  scheduled = every[args.min_history_spans:]
  if not scheduled:
    parser.error(f'{len(every)} spans: none is left after --min-history-spans '
                 f'{args.min_history_spans}')
  progress = os.path.join(output_dir, 'timeline.json')
  report = {'command': ' '.join(['python -m bench.timeline']
                                + list(argv if argv is not None else sys.argv[1:])),
            'date': provenance.now(), 'machine': provenance.machine(),
            'commit': provenance.commit(), 'dataset': prepared.dataset, 'span': args.span,
            'data_dir': args.data_dir, 'sample': args.sample,
            'window': args.window, 'warm_start': args.warm_start,
            'spans': prepared.info['spans'], 'runs': []}
  if os.path.isfile(progress):  # a restarted replay: keep the finished runs
    with open(progress, encoding='utf-8') as f:
      earlier = json.load(f)
    changed = [key for key in ('data_dir', 'sample', 'span', 'window', 'warm_start')
               if earlier.get(key, report[key]) != report[key]]  # (older replays: unknown)
    if changed:
      parser.error(f'{output_dir} holds a replay of another {", ".join(changed)}: restart it '
                   'with the same options, or give another --output-dir')
    report['runs'] = earlier['runs']
  done = {row['eval_span'] for row in report['runs']}
  for eval_span in scheduled:
    if eval_span in done:
      print(f'span {eval_span}: done earlier', flush=True)
      continue
    window = spans.training_window(every, eval_span, args.window)
    print(f'span {eval_span}: training on {spans.describe(window)} ...', flush=True)
    code, seconds, summary = _run(args, output_dir, eval_span,
                                  os.path.join(logs, f'run-{eval_span}.log'))
    row = _record(eval_span, code, seconds, summary, cold=not report['runs'])
    report['runs'].append(row)
    provenance.write(os.path.join(output_dir, 'timeline.md'), _markdown(report),
                     report)  # progress: timeline.json beside it
    print(f'  {summary["status"]} in {seconds:.1f} s: ' + ', '.join(
        f'{name} RMSE {model["rmse"]:.4f}' for name, model in row['models'].items()
        if model['rmse'] is not None), flush=True)

  if not args.no_cold_check:
    last = report['runs'][-1]
    cold_dir = os.path.join(output_dir, 'cold-check')
    shutil.rmtree(cold_dir, ignore_errors=True)
    print(f'span {last["eval_span"]}: a cold run in a new folder ...', flush=True)
    _, cold_seconds, _ = _run(args, cold_dir, last['eval_span'],
                              os.path.join(logs, f'cold-{last["eval_span"]}.log'))
    report['cold_check'] = {'eval_span': last['eval_span'], 'cold_seconds': cold_seconds,
                            'incremental_seconds': last['seconds'],
                            'ratio': last['seconds'] / cold_seconds}
  provenance.write(results, _markdown(report), report)
  _plot(report, os.path.splitext(results)[0] + '.png')
  print(f'Timeline: {results}', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
