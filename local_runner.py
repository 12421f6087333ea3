"""Runs the whole pipeline on this machine: Beam DirectRunner, SQLite ML Metadata.

    python local_runner.py --data-dir ../shared/datasets/ml-100k

Prepares the MovieLens splits, runs every component with progress lines, and ends with a short
summary and `<output-dir>/run_summary.json`.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import contextlib
import os
import sys
import time

from components.data import ingestion
from components.data import movielens_download
from components.data import movielens_formats
from components.data import spans
from pipeline import cli
from pipeline import progress


def _at_least_one(text: str) -> int:
  if not text.isdigit() or int(text) < 1:
    raise argparse.ArgumentTypeError(f'expected a whole number of at least 1, not {text!r}')
  return int(text)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Run the MovieLens recommender TFX pipeline locally.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  cli.add_data_arguments(parser)
  parser.add_argument('--data-root', metavar='DIR',
                      help='run on data prepared by python -m pipeline.prepare_data (a span '
                           'layout that --append-span grows) instead of ingesting --data-dir')
  parser.add_argument('--output-dir', default=os.path.join('.', 'runs', 'local'),
                      help='pipeline root, ML Metadata, pushed models and run summary go here')
  cli.add_settings_arguments(parser)
  parser.add_argument('--parallel', type=_at_least_one, default=2, metavar='N',
                      help='components that do not depend on each other run N at a time, never '
                           'two of one type (pipeline/concurrent_runner.py); 1: one after the '
                           'other')
  parser.add_argument('--verbose', action='store_true', help='show all TFX/Beam INFO logs')
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    settings = cli.settings_from_args(args, os.path.abspath(args.output_dir))
    started = time.monotonic()
    print('Preparing MovieLens data ...', file=sys.stderr, flush=True)
    if args.data_root:
      if args.data_dir:
        raise ValueError('--data-root and --data-dir: give one (prepared data, or a MovieLens '
                         'folder to ingest)')
      prepared = ingestion.open_prepared(os.path.abspath(args.data_root), args.eval_span)
    else:
      prepared = ingestion.prepare_examples(cli.ingestion_options(args), settings.output_dir)
  except (movielens_formats.IngestionError, movielens_download.DownloadError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  info = prepared.info
  ingestion_seconds = time.monotonic() - started
  print(f'  {info["dataset"]}: {info["num_ratings"]["train"]} train / '
        f'{info["num_ratings"]["eval"]} eval ratings ({info["split"]} split) in '
        f'{ingestion_seconds:.1f} s -> {prepared.input_base}', file=sys.stderr)
  if prepared.span_period:
    print(f'  trained on spans {spans.describe(info["train_spans"])}, evaluated on span '
          f'{prepared.eval_span}: every eval rating is later than every training rating '
          f'({info["eval_min_timestamp"]} > {info["train_max_timestamp"]})', file=sys.stderr)
  sampled = ingestion.describe_eval_sample(info)
  if sampled:
    print(f'  {sampled}', file=sys.stderr)

  log_path = os.path.join(settings.output_dir, 'logs',
                          f'run-{time.strftime("%Y%m%dT%H%M%S")}.log')
  output = (contextlib.nullcontext((sys.stdout, sys.stderr)) if args.verbose
            else progress.capture_output(log_path))
  with output as (stdout, stderr):
    from pipeline import local  # pylint: disable=import-outside-toplevel  (imports TFX, noisily)
    return local.run(settings, prepared, args.models, stdout, stderr,
                     log_path if not args.verbose else 'the output above',
                     ingestion_seconds=ingestion_seconds, max_parallel=args.parallel)


if __name__ == '__main__':
  sys.exit(main())
