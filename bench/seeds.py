"""How far a random split's seed moves the eval metrics, and whether other code moves them more.

    python -m bench.seeds [--seeds 1,2,3,4,5] [--against DIR] [--runner-arg=ARG ...]

A metric from one random split is one draw: another seed puts other ratings in eval, and the
RMSE moves by about 0.005 on ML-100K. So "the same metrics as before" is a question about the
distribution over seeds, not about one seed's figure. This runs `local_runner.py` on ML-100K's
seeded random split (the product's default) once per seed, each in a new output folder, and
records each model's eval RMSE and NDCG@10 (from run_summary.json) and the run's wall time.

With `--against DIR`, a checkout of other code (`git worktree add DIR COMMIT`), the same seeds
also run with DIR's `local_runner.py`, under this checkout's Python (the dependency set must be
the same), alternating with this checkout run by run so that the machine's drift falls on both.
The report gives each code's mean and standard deviation over the seeds and the difference of
the means with its standard error. Writes bench/results/seeds.md and .json.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
from typing import Dict, List, Optional

from bench import pipeline as bench_pipeline
from bench import provenance

MODELS = ('content_based', 'collaborative_filtering')
METRICS = ('rmse', 'ndcg@10')  # eval RMSE, and NDCG@10 of the `recommend` lists
THIS = 'this checkout'


def measure(checkout: str, seed: int, data_dir: str, output_dir: str, extra: List[str]) -> Dict:
  """One cold run of `checkout`'s local_runner.py on the random split of `seed`, in a new
  `output_dir`."""
  shutil.rmtree(output_dir, ignore_errors=True)
  command = [sys.executable, os.path.join(checkout, 'local_runner.py'), '--data-dir', data_dir,
             '--seed', str(seed), '--output-dir', output_dir, *extra]
  code, seconds, peak, _ = bench_pipeline.run_once(command, output_dir + '.log', cwd=checkout)
  if code != 0:
    raise SystemExit(f'seed {seed}: {checkout}/local_runner.py exited with {code} (log: '
                     f'{output_dir}.log)')
  with open(os.path.join(output_dir, 'run_summary.json'), encoding='utf-8') as f:
    summary = json.load(f)
  models = {m['name']: m for m in summary['models']}
  return {'seed': seed, 'seconds': round(seconds, 1), 'peak_rss_bytes': peak,
          'metrics': {name: {'rmse': models[name]['metrics']['rmse'],
                             'ndcg@10': models[name]['ranking']['ndcg@10']}
                      for name in MODELS}}


def spread(values: List[float]) -> Dict[str, Optional[float]]:
  """Mean, sample standard deviation and standard error of the mean (None below two values)."""
  sd = statistics.stdev(values) if len(values) > 1 else None
  return {'mean': statistics.fmean(values), 'sd': sd,
          'se': sd / math.sqrt(len(values)) if sd is not None else None, 'n': len(values)}


def summarize(runs: Dict[str, List[Dict]]) -> Dict:
  """{code: {model: {metric: spread}}, plus 'seconds'}, and, with two codes, the differences
  of the means (this checkout minus the other) with their standard errors."""
  result = {}
  for code, rows in runs.items():
    if not rows:
      continue
    result[code] = {name: {metric: spread([r['metrics'][name][metric] for r in rows])
                           for metric in METRICS} for name in MODELS}
    result[code]['seconds'] = spread([r['seconds'] for r in rows])
  others = [code for code in runs if code != THIS]
  if others and len(runs[THIS]) > 1 and len(runs[others[0]]) > 1:
    mine, theirs = result[THIS], result[others[0]]
    result['difference'] = {
        name: {metric: {'mean': mine[name][metric]['mean'] - theirs[name][metric]['mean'],
                        'se': math.hypot(mine[name][metric]['se'], theirs[name][metric]['se'])}
               for metric in METRICS} for name in MODELS}
  return result


def _markdown(report: Dict) -> str:
  codes = list(report['runs'])
  lines = ['# Eval metrics over seeded random splits', '',
           f"Command: `{report['command']}`  ", f"Date: {report['date']}  ",
           f"Machine: {report['machine']}  ", f"Commit: {report['commit']}"
           + (f"; against: {report['against']} at {report['against_commit']}"
              if report.get('against') else ''), '',
           f"Each row is one cold run of local_runner.py on {report['data_dir']}'s random 80/20 "
           'split with that seed. RMSE: on the eval split; NDCG@10: of the `recommend` lists. '
           'CB: content_based, CF: collaborative_filtering.'
           + (' Runs of the two codes alternate, seed by seed.' if len(codes) > 1 else ''), '',
           '| code | seed | CB RMSE | CB NDCG@10 | CF RMSE | CF NDCG@10 | s |',
           '|---|---:|---:|---:|---:|---:|---:|']
  for code in codes:
    for r in report['runs'][code]:
      m = r['metrics']
      lines.append(f"| {code} | {r['seed']} | {m['content_based']['rmse']:.4f} | "
                   f"{m['content_based']['ndcg@10']:.4f} | "
                   f"{m['collaborative_filtering']['rmse']:.4f} | "
                   f"{m['collaborative_filtering']['ndcg@10']:.4f} | {r['seconds']:.1f} |")
  summary = report['summary']

  def cell(s):
    return f"{s['mean']:.4f} ± {s['sd']:.4f}" if s['sd'] is not None else f"{s['mean']:.4f}"
  lines += ['', '## Mean ± standard deviation over the seeds', '',
            '| code | seeds | CB RMSE | CB NDCG@10 | CF RMSE | CF NDCG@10 | s |',
            '|---|---:|---:|---:|---:|---:|---:|']
  for code in (c for c in codes if c in summary):
    s = summary[code]
    lines.append(f"| {code} | {s['seconds']['n']} | " + ' | '.join(
        cell(s[name][metric]) for name in MODELS for metric in METRICS)
        + f" | {s['seconds']['mean']:.1f} |")
  if 'difference' in summary:
    d = summary['difference']
    lines += ['', f'## {THIS} minus {codes[1]}: difference of the means ± its standard error', '',
              '| CB RMSE | CB NDCG@10 | CF RMSE | CF NDCG@10 |', '|---:|---:|---:|---:|',
              '| ' + ' | '.join(f"{d[name][metric]['mean']:+.4f} ± {d[name][metric]['se']:.4f}"
                                for name in MODELS for metric in METRICS) + ' |']
  return '\n'.join(lines) + '\n'


def _seeds(text: str) -> List[int]:
  try:
    seeds = [int(s) for s in text.split(',')]
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected comma-separated whole numbers, not {text!r}')
  if len(set(seeds)) != len(seeds):
    raise argparse.ArgumentTypeError(f'a seed is repeated in {text!r}')
  return seeds


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m bench.seeds',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('--seeds', type=_seeds, default=[1, 2, 3, 4, 5],
                      help='comma-separated split seeds; about 2 minutes per seed and code here')
  parser.add_argument('--against', metavar='DIR',
                      help='a checkout of other code whose local_runner.py runs the same seeds')
  parser.add_argument('--data-dir', default=provenance.ML_100K_DIR)
  parser.add_argument('--work-dir', help='run folders go here (default: a temporary folder, '
                      'removed after a benchmark that completes)')
  parser.add_argument('--runner-arg', action='append', default=[],
                      help='passed to every local_runner.py, repeatable')
  parser.add_argument('--output', default=os.path.join(provenance.PROJECT_DIR, 'bench',
                                                       'results', 'seeds.md'))
  args = parser.parse_args(argv)
  checkouts = {THIS: provenance.PROJECT_DIR}
  if args.against:
    against = os.path.abspath(args.against)
    if not os.path.isfile(os.path.join(against, 'local_runner.py')):
      parser.error(f'--against {args.against}: no local_runner.py there')
    checkouts[os.path.basename(against.rstrip(os.sep))] = against
  if not os.path.isdir(args.data_dir):
    parser.error(f'--data-dir {args.data_dir}: no such folder')
  data_dir = os.path.abspath(args.data_dir)
  # What every report says of the runs, fixed before they start (the commit before our own
  # report files change the working tree).
  header = {'command': 'python -m bench.seeds ' + ' '.join(
                argv if argv is not None else sys.argv[1:]),
            'machine': provenance.machine(), 'commit': provenance.commit(),
            'data_dir': os.path.basename(data_dir), 'against': args.against,
            'against_commit': provenance.commit(against) if args.against else None}
  work_dir = args.work_dir or tempfile.mkdtemp(prefix='bench-seeds-')
  os.makedirs(work_dir, exist_ok=True)
  runs: Dict[str, List[Dict]] = {code: [] for code in checkouts}
  report = {}
  try:
    for seed in args.seeds:
      for index, (code, checkout) in enumerate(checkouts.items()):
        runs[code].append(measure(checkout, seed, data_dir,
                                  os.path.join(work_dir, f'code{index}-seed{seed}'),
                                  args.runner_arg))
        report = {**header, 'date': provenance.now(), 'runs': runs,
                  'summary': summarize(runs)}
        provenance.write(args.output, _markdown(report), report)
  except SystemExit:
    print(f'the runs are kept in {work_dir}', file=sys.stderr)
    raise
  if not args.work_dir:
    shutil.rmtree(work_dir, ignore_errors=True)
  print(_markdown(report))
  return 0


if __name__ == '__main__':
  sys.exit(main())
