"""What the Evaluator's time goes to: TFMA on a finished run's eval split, part by part.

    python -m bench.evaluator [--output-dir runs/local] [--model content_based]

Runs TFMA (Beam DirectRunner, as the Evaluator does) over the eval split of the run in
`--output-dir` with the pushed model, five times: overall metrics only; with the slices; with the
per-user NDCG but no slices; with the top-K lists (TopKRanking) but no slices; everything (the
pipeline's EvalConfig, without the blessing thresholds, which need a baseline). Prints the wall
time of each.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import glob
import os
import sys
import tempfile
import time

VARIANTS = ('overall metrics', 'with slices', 'with NDCG, no slices', 'with top-K, no slices',
            'everything')
# The metrics each variant keeps besides RatingErrors ('everything' keeps all).
EXTRA_METRICS = {'overall metrics': (), 'with slices': (), 'with NDCG, no slices': ('UserNDCG',),
                 'with top-K, no slices': ('TopKRanking',)}


def variant_config(name: str):
  """The pipeline's EvalConfig, cut down to the variant `name` (one of VARIANTS)."""
  from components.evaluation import eval_config as evaluation  # pylint: disable=import-outside-toplevel
  config = evaluation.eval_config(5.0, 0.0)
  spec = config.metrics_specs[0]
  for metric in spec.metrics:
    del metric.per_slice_thresholds[:]
  spec.per_slice_thresholds.clear()
  if name not in ('with slices', 'everything'):
    del config.slicing_specs[:]
    config.slicing_specs.add()
  if name in EXTRA_METRICS:
    kept = [m for m in spec.metrics
            if m.class_name == 'RatingErrors' or m.class_name in EXTRA_METRICS[name]]
    del spec.metrics[:]
    spec.metrics.extend(kept)
  if name == 'overall metrics':  # RatingErrors without its calibration plot
    for metric in spec.metrics:
      if metric.class_name == 'RatingErrors':
        metric.config = ''
  return config


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', default=os.path.join('runs', 'local'))
  parser.add_argument('--model', default='content_based')
  args = parser.parse_args(argv)
  models = sorted(glob.glob(os.path.join(args.output_dir, 'serving', args.model, '[0-9]*')),
                  key=lambda p: int(os.path.basename(p)))
  data = glob.glob(os.path.join(args.output_dir, 'tfx', 'CsvExampleGen', 'examples', '*',
                                'Split-eval', '*'))
  if not models or not data:
    print(f'error: {args.output_dir} has no pushed {args.model} or no eval split: run the '
          'pipeline first', file=sys.stderr)
    return 2
  import tensorflow_model_analysis as tfma  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory() as temp_dir:
    for name in VARIANTS:
      config = variant_config(name)
      shared = tfma.default_eval_shared_model(models[-1], eval_config=config)
      started = time.monotonic()
      tfma.run_model_analysis(eval_shared_model=shared, eval_config=config,
                              data_location=data[0], file_format='tfrecords',
                              output_path=os.path.join(temp_dir, name.replace(' ', '_')))
      print(f'{name}: {time.monotonic() - started:.1f} s', flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
