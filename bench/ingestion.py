"""Data preparation alone, by size: wall time and peak memory of ingestion (and CsvExampleGen).

    python -m bench.ingestion [--sizes 1000000,25000000] [--ml-100k] [--example-gen]
                              [--span month|week] [--work-dir DIR] [--results FILE]

For each size, writes synthetic MovieLens-latest data (`bench.synth`, seeded) and runs the
ingestion a local run starts with (`components.data.ingestion.prepare_examples`: read and
validate, split, join, write) in a fresh process, recording its wall time and peak resident
memory (the child's ru_maxrss). With --example-gen, the pipeline's CsvExampleGen executor
(components/tfx/typed_csv_example_gen.py, on Beam's DirectRunner) then turns the prepared
splits into tf.Examples in another fresh process, timed the same way. Writes
bench/results/ingestion.md and .json, with the scale issue's floor: ingestion's peak at the
largest size over its peak at the smallest (<= 1.5).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from bench import provenance

RESULTS = os.path.join(provenance.PROJECT_DIR, 'bench', 'results', 'ingestion.md')
GROWTH_FLOOR = 1.5  # peak at 25M over peak at 1M (the scale issue)
_CHILD = '''
import json, resource, sys, time
from components.data import ingestion
started = time.monotonic()
prepared = ingestion.prepare_examples(
    ingestion.IngestionOptions(data_dir=sys.argv[1], span=sys.argv[3] or None), sys.argv[2])
print(json.dumps({'seconds': time.monotonic() - started,
                  'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'ratings': prepared.info['num_ratings']}))
'''

_EXAMPLE_GEN_CHILD = '''
import json, resource, sys, time
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils
from components.data import ingestion
from components.tfx import typed_csv_example_gen
prepared = ingestion.prepare_examples(ingestion.IngestionOptions(data_dir=sys.argv[1]), sys.argv[2])
examples = standard_artifacts.Examples()
examples.uri = sys.argv[3]
splits = [example_gen_pb2.Input.Split(name=s, pattern=f'{s}/*.csv')
          for s in (ingestion.TRAIN, ingestion.EVAL)]
started = time.monotonic()
typed_csv_example_gen.Executor().Do({}, {'examples': [examples]}, {
    'input_base': prepared.input_base,
    'input_config': proto_utils.proto_to_json(example_gen_pb2.Input(splits=splits)),
    'output_config': proto_utils.proto_to_json(example_gen_pb2.Output()),
    'output_data_format': example_gen_pb2.FORMAT_TF_EXAMPLE,
    'output_file_format': example_gen_pb2.FORMAT_TFRECORDS_GZIP})
print(json.dumps({'seconds': time.monotonic() - started,
                  'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def _child(script: str, *args: str) -> dict:
  """`script` run in a new process with `args`; the JSON of its last line."""
  result = subprocess.run([sys.executable, '-c', script, *args],
                          cwd=provenance.PROJECT_DIR, capture_output=True, text=True, check=False)
  if result.returncode:
    raise SystemExit(f'{args[0]} failed:\n{result.stderr[-2000:]}')
  return json.loads(result.stdout.strip().splitlines()[-1])


def measure(data_dir: str, output_dir: str, span: str = '') -> dict:
  """One ingestion of `data_dir` in a new process (in time spans of `span`, if given):
  seconds, peak MiB, ratings per split (with spans, of the latest span's run)."""
  return _child(_CHILD, data_dir, output_dir, span)


def measure_example_gen(data_dir: str, output_dir: str) -> dict:
  """CsvExampleGen over the prepared splits of `data_dir` (prepared first, or reused from
  `output_dir`), in a new process: its seconds and peak MiB (the process's, preparation
  included, which `measure` reports alone)."""
  return _child(_EXAMPLE_GEN_CHILD, data_dir, output_dir, os.path.join(output_dir, 'examples'))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--sizes', default='1000000,25000000',
                      help='synthetic sizes in ratings, comma-separated')
  parser.add_argument('--ml-100k', action='store_true', help='also the real ML-100K')
  parser.add_argument('--example-gen', action='store_true',
                      help="also time the pipeline's CsvExampleGen on the prepared splits")
  parser.add_argument('--work-dir', help='where the data and outputs go (default: a temporary '
                                         'folder, removed afterwards)')
  parser.add_argument('--span', choices=('month', 'week'),
                      help='prepare time spans instead of the random split')
  parser.add_argument('--results', default=RESULTS)
  args = parser.parse_args(argv)
  work = args.work_dir or tempfile.mkdtemp(prefix='bench-ingestion-')
  rows = []
  try:
    datasets = [('ml-100k', provenance.ML_100K_DIR)] if args.ml_100k else []
    for size in (int(s) for s in args.sizes.split(',')):
      folder = os.path.join(work, f'synth-{size}')
      if not os.path.isfile(os.path.join(folder, 'ratings.csv')):
        subprocess.run([sys.executable, '-m', 'bench.synth', '--ratings', str(size),
                        '--output', folder], cwd=provenance.PROJECT_DIR, check=True,
                       stdout=subprocess.DEVNULL)
      datasets.append((f'synthetic {size:,}', folder))
    for name, folder in datasets:
      output = os.path.join(work, 'out-' + os.path.basename(folder))
      shutil.rmtree(output, ignore_errors=True)
      row = {'data': name, **measure(folder, output, args.span or '')}
      print(f"{name}: {row['seconds']:.1f} s, peak {row['peak_mib']:,.0f} MiB", flush=True)
      if args.example_gen:
        row['example_gen'] = measure_example_gen(folder, output)
        print(f"{name}: CsvExampleGen {row['example_gen']['seconds']:.1f} s", flush=True)
      shutil.rmtree(output, ignore_errors=True)
      rows.append(row)
  finally:
    if not args.work_dir:
      shutil.rmtree(work, ignore_errors=True)

  synthetic = [r for r in rows if r['data'].startswith('synthetic')]
  growth = (synthetic[-1]['peak_mib'] / synthetic[0]['peak_mib']) if len(synthetic) > 1 else None
  command = 'python -m bench.ingestion ' + ' '.join(argv if argv is not None else sys.argv[1:])
  lines = ['# Data preparation by size', '', f'Command: `{command.strip()}`  ',
           f'Date: {provenance.now()}  ', f'Machine: {provenance.machine()}  ',
           f'Commit: {provenance.commit()}', '',
           'Ingestion alone (read and validate, '
           + (f'cut into spans by {args.span}' if args.span else 'split')
           + ', join, write), in a new process each: wall time and peak resident memory.'
           + (' With spans, the ratings are those of the latest span\'s run.' if args.span else ''),
           '',
           '| data | train / eval ratings | seconds | peak MiB |'
           + (' CsvExampleGen seconds |' if args.example_gen else ''),
           '|---|---:|---:|---:|' + ('---:|' if args.example_gen else '')]
  for r in rows:
    lines.append(f"| {r['data']} | {r['ratings']['train']:,} / {r['ratings']['eval']:,} | "
                 f"{r['seconds']:.1f} | {r['peak_mib']:,.0f} |"
                 + (f" {r['example_gen']['seconds']:.1f} |" if 'example_gen' in r else ''))
  if growth is not None:
    lines += ['', f"Peak at {synthetic[-1]['data']} over the peak at {synthetic[0]['data']}: "
                  f'{growth:.2f} (the floor is {GROWTH_FLOOR}: '
                  f'{"met" if growth <= GROWTH_FLOOR else "NOT met"}).']
  provenance.write(args.results, '\n'.join(lines) + '\n',
                   {'command': command.strip(), 'date': provenance.now(),
                    'machine': provenance.machine(), 'commit': provenance.commit(),
                    'rows': rows, 'peak_growth': growth, 'growth_floor': GROWTH_FLOOR})
  return 0


if __name__ == '__main__':
  sys.exit(main())
