"""StatisticsGen alone: the project's (components/tfx/batch_read_statistics_gen.py) against TFX's.

    python -m bench.statistics_gen --data-dir DIR [--rounds 2] [--sample-ratings 0]
                                   [--work-dir DIR]

Prepares DIR as a local run does; then, alternating the variants for --rounds rounds, runs the
pipeline's CsvExampleGen into a new store and times a run of CsvExampleGen (cached) and
StatisticsGen through TFX's LocalDagRunner. Prints one line per run; nothing is written to
bench/results/.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', required=True)
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--sample-ratings', type=int, default=0,
                      help='--statistics-sample (default 0: every rating described)')
  parser.add_argument('--work-dir', help='default: a temporary folder, removed afterwards')
  args = parser.parse_args(argv)
  # pylint: disable=import-outside-toplevel
  from tfx import components as tfx_components
  from components.tfx import batch_read_statistics_gen
  from pipeline import configs
  from pipeline import partial
  from pipeline import pipeline as pipeline_def
  work = args.work_dir or tempfile.mkdtemp(prefix='bench-statistics-gen-')
  try:
    data = partial.prepared_with_schema(args.data_dir, work)
    variants = {'tfx': tfx_components.StatisticsGen,
                'project': batch_read_statistics_gen.StatisticsGen}
    for round_ in range(args.rounds):
      for name, component in variants.items():
        settings = configs.PipelineSettings(  # a new store each run: nothing cached but
            output_dir=os.path.join(work, f'{name}-{round_}'),  # the CsvExampleGen of `run`
            statistics_sample_ratings=args.sample_ratings)
        example_gen, statistics_gen = pipeline_def.examples_and_statistics(settings, data,
                                                                           component)
        partial.run_components(settings, [example_gen], 'statistics', enable_cache=True)
        started = time.monotonic()
        partial.run_components(settings, [example_gen, statistics_gen], 'statistics',
                               enable_cache=True)
        print(f'round {round_ + 1}, {name} StatisticsGen: '
              f'{time.monotonic() - started:.1f} s (CsvExampleGen cached)', flush=True)
        shutil.rmtree(settings.output_dir, ignore_errors=True)
  finally:
    if not args.work_dir:
      shutil.rmtree(work, ignore_errors=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
