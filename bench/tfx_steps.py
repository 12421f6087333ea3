"""StatisticsGen and Transform alone: the project's (components/tfx/batch_read_statistics_gen.py,
batch_io_transform.py) against TFX's stock components.

    python -m bench.tfx_steps --data-dir DIR [--steps statistics_gen,transform] [--rounds 2]
                              [--sample-ratings 0] [--work-dir DIR]

Prepares DIR as a local run does; then for each step, alternating TFX's component and the
project's for --rounds rounds, runs the pipeline's CsvExampleGen and ImportSchemaGen into a new
store and times a run of them (cached) with the step through TFX's LocalDagRunner. Prints one
line per run; nothing is written to bench/results/.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

STEPS = ('statistics_gen', 'transform')


def _step_component(step: str, settings, data, component, example_gen):
  """The components a run of `step` (by `component`) needs besides CsvExampleGen."""
  # pylint: disable=import-outside-toplevel
  from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
  from pipeline import pipeline as pipeline_def
  if step == 'statistics_gen':
    return [pipeline_def.examples_and_statistics(settings, data, component)[1]]
  schema_gen = ImportSchemaGen(schema_file=data.schema_path)
  return [schema_gen, pipeline_def.transform_component(
      example_gen.outputs['examples'], schema_gen.outputs['schema'], 'bench', component)]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--data-dir', required=True)
  parser.add_argument('--steps', default=','.join(STEPS), help=f'comma-separated of {STEPS}')
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--sample-ratings', type=int, default=0,
                      help="StatisticsGen's --statistics-sample (default 0: every rating "
                           'described)')
  parser.add_argument('--work-dir', help='default: a temporary folder, removed afterwards')
  args = parser.parse_args(argv)
  steps = args.steps.split(',')
  if not set(steps) <= set(STEPS):
    parser.error(f'--steps: choose from {STEPS}')
  # pylint: disable=import-outside-toplevel
  from tfx import components as tfx_components
  from components.tfx import batch_io_transform
  from components.tfx import batch_read_statistics_gen
  from pipeline import configs
  from pipeline import partial
  from pipeline import pipeline as pipeline_def
  variants = {'statistics_gen': {'tfx': tfx_components.StatisticsGen,
                                 'project': batch_read_statistics_gen.StatisticsGen},
              'transform': {'tfx': tfx_components.Transform,
                            'project': batch_io_transform.Transform}}
  label = {'statistics_gen': 'StatisticsGen', 'transform': 'Transform'}
  work = args.work_dir or tempfile.mkdtemp(prefix='bench-tfx-steps-')
  try:
    data = partial.prepared_with_schema(args.data_dir, work)
    for step in steps:
      for round_ in range(args.rounds):
        for name, component in variants[step].items():
          settings = configs.PipelineSettings(  # a new store each run: nothing cached but
              output_dir=os.path.join(work, f'{step}-{name}-{round_}'),  # what it times
              statistics_sample_ratings=args.sample_ratings)
          example_gen, _ = pipeline_def.examples_and_statistics(settings, data)
          partial.run_components(settings, [example_gen], step, enable_cache=True)
          timed = _step_component(step, settings, data, component, example_gen)
          started = time.monotonic()
          partial.run_components(settings, [example_gen] + timed, step, enable_cache=True)
          print(f'round {round_ + 1}, {name} {label[step]}: '
                f'{time.monotonic() - started:.1f} s (CsvExampleGen cached)', flush=True)
          shutil.rmtree(settings.output_dir, ignore_errors=True)
  finally:
    if not args.work_dir:
      shutil.rmtree(work, ignore_errors=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
