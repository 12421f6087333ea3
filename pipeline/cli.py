"""The flags both runners take for the pipeline's settings, and the settings they make.

`local_runner.py` and `kubeflow_runner.py` differ in where the pipeline runs; what it trains and
when it blesses a model are the same flags, turned into one `configs.PipelineSettings` here.
"""

import argparse

from components.data import ingestion
from components.data import movielens_download
from components.data import movielens_formats
from components.data import movielens_splits
from components.data import spans
from components.models import hyperparameters
from pipeline import configs

DEFAULT_MAX_EVAL_RATINGS = ingestion.DEFAULT_MAX_EVAL_RATINGS


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
  """Which MovieLens data, and how it is split into train and eval."""
  add = parser.add_argument
  add('--data-dir', help='a local MovieLens folder (default: download from GroupLens into the '
      'user cache, or reuse the cached copy)')
  add('--dataset', choices=movielens_formats.DATASETS,
      help='the MovieLens format (default: detected from the files)')
  add('--split', default=movielens_splits.RANDOM, choices=movielens_splits.STRATEGIES,
      help='train/eval split strategy')
  add('--eval-fraction', type=float, default=0.2,
      help='eval share of the ratings (of the users for cold_users); not for canonical')
  add('--seed', type=int, default=42, help='seed of the random split')
  add('--sample', type=int, help='use only the first N ratings (quick runs)')
  add('--span', choices=spans.PERIODS,
      help='cut the ratings into time spans (UTC months YYYYMM or ISO weeks YYYYWW) instead of '
           '--split: a run trains on the spans before --eval-span and is evaluated on it '
           '(all of the span: --max-eval-ratings does not apply)')
  add('--eval-span', type=int, metavar='N',
      help='with --span: the span to evaluate on (default: the latest)')
  add('--window', type=int, default=0, metavar='W',
      help='with --span: train on the last W spans before the eval span (default 0: all)')
  add('--cache-dir', help='where downloads are cached (default: '
      f'{movielens_download.default_cache_dir()})')
  add('--on-bad-rows', choices=movielens_formats.POLICIES, default=movielens_formats.FAIL,
      help='a malformed row: fail (stop, naming file, line and reason) or skip it (counted by '
           'reason and listed in <output-dir>/rejected_rows.csv)')
  add('--max-eval-ratings', type=int, default=DEFAULT_MAX_EVAL_RATINGS, metavar='N',
      help='with more eval ratings than N, evaluate all eval ratings of a seeded sample of the '
           f'users, up to N ratings (default {DEFAULT_MAX_EVAL_RATINGS:,}: each TFMA Evaluator '
           'takes about 11 minutes per million eval ratings on 2 cores; 0 evaluates all)')


def ingestion_options(args: argparse.Namespace) -> ingestion.IngestionOptions:
  if not args.span and (args.eval_span is not None or args.window):
    raise ValueError('--eval-span and --window need --span (month or week)')
  if args.span and args.split != movielens_splits.RANDOM:
    raise ValueError(f'--span replaces --split: a run is evaluated on its span, not on a '
                     f'{args.split} split')
  return ingestion.IngestionOptions(
      data_dir=args.data_dir, dataset=args.dataset, split=args.split,
      eval_fraction=args.eval_fraction, seed=args.seed, sample=args.sample,
      cache_dir=args.cache_dir, on_bad_rows=args.on_bad_rows,
      max_eval_ratings=args.max_eval_ratings or None, span=args.span,
      eval_span=args.eval_span, window=args.window)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
  add = parser.add_argument
  add('--epochs', type=int, help='training epochs for both models '
      '(default: per-model settings in pipeline/configs.py)')
  add('--set', action='append', default=[], metavar='MODEL.NAME=VALUE',
      help='override a hyperparameter of pipeline/configs.py (repeatable; the names and what '
           'they do: components/models/hyperparameters.py), '
           'e.g. collaborative_filtering.learning_rate=0.001')
  add('--models', nargs='+', choices=configs.MODEL_NAMES, default=list(configs.MODEL_NAMES),
      help='which models to train')
  add('--max-rmse', type=float, default=configs.PipelineSettings.rmse_upper_bound,
      help='blessing: the highest eval RMSE a model may have to be pushed')
  add('--max-rmse-increase', type=float, default=configs.PipelineSettings.max_rmse_increase,
      help='blessing: how much worse than the latest blessed model it may be')
  add('--max-ndcg-decrease', type=float, default=configs.PipelineSettings.max_ndcg_decrease,
      help='blessing: how much lower than the latest blessed model\'s its NDCG@10 (of '
           'recommend\'s top 10 on the eval split) may be')
  add('--allow-below-most-popular', action='store_true',
      help='blessing: do not require NDCG@10 at least most-popular\'s on the same users')
  add('--beam-arg', action='append', default=[], metavar='ARG',
      help='passed to Beam, repeatable (e.g. --beam-arg=--direct_running_mode=multi_processing, '
           '--beam-arg=--runner=DataflowRunner)')
  add('--statistics-sample', type=int, metavar='N',
      default=configs.DEFAULT_STATISTICS_SAMPLE_RATINGS,
      help='StatisticsGen describes a random sample of about N ratings when there are more '
           f'(TFDV\'s sample_rate; default {configs.DEFAULT_STATISTICS_SAMPLE_RATINGS:,}; 0: '
           'all ratings)')
  add('--own-processes-from', type=int, metavar='N',
      default=configs.DEFAULT_OWN_PROCESSES_FROM_RATINGS,
      help='local runs: from N ratings on, ExampleGen, StatisticsGen, Transform, the Trainers and '
           'the Evaluators run each in a Python process of its own, which gives their memory '
           f'back when they end (default {configs.DEFAULT_OWN_PROCESSES_FROM_RATINGS:,}; 0: '
           'never, 1: always)')
  add('--warm-start', action='store_true',
      help='each Trainer starts from the latest blessed model of its name and trains for its '
           'warm_start_share of a fit from scratch (where that model\'s training ratings are '
           'all among this run\'s; otherwise from scratch): for a schedule, whose window grows '
           'by a span a run')
  add('--no-cache', action='store_true', help='rerun every component')


def settings_from_args(args: argparse.Namespace, output_dir: str,
                       **overrides) -> configs.PipelineSettings:
  """The settings the flags above describe (ValueError for a bad --epochs, --set or
  --statistics-sample)."""
  if args.statistics_sample < 0:
    raise ValueError(f'--statistics-sample must be 0 (all) or more, got {args.statistics_sample}')
  if args.own_processes_from < 0:
    raise ValueError(f'--own-processes-from must be 0 (never) or more, got '
                     f'{args.own_processes_from}')
  settings = configs.PipelineSettings(
      output_dir=output_dir, rmse_upper_bound=args.max_rmse,
      max_rmse_increase=args.max_rmse_increase, max_ndcg_decrease=args.max_ndcg_decrease,
      ranking_must_beat_popularity=not args.allow_below_most_popular,
      beam_pipeline_args=list(args.beam_arg),
      statistics_sample_ratings=args.statistics_sample,
      own_processes_from_ratings=args.own_processes_from,
      enable_cache=not args.no_cache, warm_start=args.warm_start, **overrides)
  settings.set_epochs(args.epochs)
  settings.hparams = hyperparameters.override(settings.hparams, args.set)
  return settings
