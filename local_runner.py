"""Runs the whole pipeline on this machine: Beam DirectRunner, SQLite ML Metadata.

    python local_runner.py --data-dir ../shared/datasets/ml-100k

Prepares the MovieLens splits, runs every component with progress lines, and ends with a short
summary and `<output-dir>/run_summary.json`.
"""

import os

# Before TensorFlow is first imported: TFX/TFT/TFMA need Keras 2 (tf_keras) as tf.keras.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import warnings  # noqa: E402

# google-api-core warns on import that Python 3.10 support is ending; TFX 1.16 needs 3.10.
warnings.filterwarnings('ignore', category=FutureWarning, module=r'google\.')

import argparse  # noqa: E402
import contextlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from components import ingestion  # noqa: E402
from components import movielens_download  # noqa: E402
from components import movielens_formats  # noqa: E402
from components import movielens_splits  # noqa: E402
from pipeline import configs  # noqa: E402
from pipeline import progress  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Run the MovieLens recommender TFX pipeline locally.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  parser.add_argument('--data-dir', help='a local MovieLens folder (default: download from '
                      'GroupLens into the user cache, or reuse the cached copy)')
  parser.add_argument('--dataset', choices=movielens_formats.DATASETS,
                      help='the MovieLens format (default: detected from the files)')
  parser.add_argument('--split', default=movielens_splits.RANDOM,
                      choices=movielens_splits.STRATEGIES, help='train/eval split strategy')
  parser.add_argument('--eval-fraction', type=float, default=0.2,
                      help='eval share of the ratings (of the users for cold_users); not for canonical')
  parser.add_argument('--seed', type=int, default=42, help='seed of the random split')
  parser.add_argument('--sample', type=int, help='use only the first N ratings (quick runs)')
  parser.add_argument('--output-dir', default=os.path.join('.', 'runs', 'local'),
                      help='pipeline root, ML Metadata, pushed models and run summary go here')
  parser.add_argument('--epochs', type=int, help='training epochs for both models '
                      '(default: per-model settings in pipeline/configs.py)')
  parser.add_argument('--set', action='append', default=[], metavar='MODEL.NAME=VALUE',
                      help='override a hyperparameter of pipeline/configs.py (repeatable), '
                           'e.g. collaborative_filtering.learning_rate=0.001')
  parser.add_argument('--models', nargs='+', choices=configs.MODEL_NAMES,
                      default=list(configs.MODEL_NAMES), help='which models to train')
  parser.add_argument('--max-rmse', type=float, default=configs.PipelineSettings.rmse_upper_bound,
                      help='blessing: the highest eval RMSE a model may have to be pushed')
  parser.add_argument('--max-rmse-increase', type=float,
                      default=configs.PipelineSettings.max_rmse_increase,
                      help='blessing: how much worse than the latest blessed model it may be')
  parser.add_argument('--beam-arg', action='append', default=[], metavar='ARG',
                      help='passed to Beam, repeatable (e.g. '
                      '--beam-arg=--direct_running_mode=multi_processing)')
  parser.add_argument('--no-cache', action='store_true', help='rerun every component')
  parser.add_argument('--cache-dir', help='where downloads are cached (default: '
                      f'{movielens_download.default_cache_dir()})')
  parser.add_argument('--verbose', action='store_true', help='show all TFX/Beam INFO logs')
  return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> configs.PipelineSettings:
  settings = configs.PipelineSettings(
      output_dir=os.path.abspath(args.output_dir), rmse_upper_bound=args.max_rmse,
      max_rmse_increase=args.max_rmse_increase, beam_pipeline_args=list(args.beam_arg),
      enable_cache=not args.no_cache)
  settings.set_epochs(args.epochs)
  configs.override_hparams(settings.hparams, args.set)
  return settings


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    settings = settings_from_args(args)
    options = ingestion.IngestionOptions(
        data_dir=args.data_dir, dataset=args.dataset, split=args.split,
        eval_fraction=args.eval_fraction, seed=args.seed, sample=args.sample,
        cache_dir=args.cache_dir)
    started = time.monotonic()
    print('Preparing MovieLens data ...', file=sys.stderr, flush=True)
    prepared = ingestion.prepare_examples(options, settings.output_dir)
  except (movielens_formats.IngestionError, movielens_download.DownloadError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  info = prepared.info
  ingestion_seconds = time.monotonic() - started
  print(f'  {info["dataset"]}: {info["num_ratings"]["train"]} train / '
        f'{info["num_ratings"]["eval"]} eval ratings ({info["split"]} split) in '
        f'{ingestion_seconds:.1f} s -> {prepared.input_base}', file=sys.stderr)

  log_path = os.path.join(settings.output_dir, 'logs',
                          f'run-{time.strftime("%Y%m%dT%H%M%S")}.log')
  output = (contextlib.nullcontext((sys.stdout, sys.stderr)) if args.verbose
            else progress.capture_output(log_path))
  with output as (stdout, stderr):
    from pipeline import local  # pylint: disable=import-outside-toplevel  (imports TFX, noisily)
    return local.run(settings, prepared, args.models, stdout, stderr,
                     log_path if not args.verbose else 'the output above',
                     ingestion_seconds=ingestion_seconds)


if __name__ == '__main__':
  sys.exit(main())
