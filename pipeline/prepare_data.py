"""The cluster pipeline's preliminary job: MovieLens prepared for CsvExampleGen under `--data-root`.

    python -m pipeline.prepare_data --data-root gs://BUCKET/movielens/ml-100k [--dataset ml-100k]
        [--data-dir LOCAL_FOLDER] [--split random] [--sample N] ...

Runs the same ingestion as `local_runner.py` (download from GroupLens unless `--data-dir` is
given, validate, join, split) and writes, through TFX's filesystem layer (local paths, gs://,
and s3:// where TensorFlow has that filesystem):

    <data-root>/train/ratings.csv, <data-root>/eval/ratings.csv   CsvExampleGen's input_base
    <data-root>/movies.csv                                          the catalogue the models serve
    <data-root>/schema/<hash>/schema.pbtxt                          the curated schema, adapted
    <data-root>/dataset.json                                        what was written, last

kubeflow_runner.py compiles the pipeline against this layout (`data_layout`, an
`ingestion.PreparedData` like a local run's), so the job runs
once per dataset, anywhere with the pipeline image (a Kubernetes Job: see docs/kubeflow.md), and a
cluster run needs no laptop. Each file is written under a temporary name and renamed into place.

With `--span` the layout is in time spans (docs/timeline.md), and new ratings arrive as spans:
`--append-span FILE` appends one file, `--append-from INBOX` every file of a folder not
appended before, which a CronJob runs on a schedule (serving/prepare-data-cronjob.yaml).
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import dataclasses
import os
import sys
import tempfile
from typing import Optional

from components import atomic_files
from components.data import ingestion
from components.data import movielens_download
from components.data import movielens_formats
from pipeline import cli


def data_layout(data_root: str, dataset: str,
                span_period: Optional[str] = None) -> ingestion.PreparedData:
  """What this job writes for `dataset` under `data_root` (computed, nothing is read); with
  spans, a run reads the latest one."""
  from pipeline import schema as schema_lib  # pylint: disable=import-outside-toplevel
  scale = movielens_formats.RATING_SCALES[dataset]
  layout = ingestion.PreparedData(
      dataset=dataset, input_base=data_root,
      catalogue_path=os.path.join(data_root, ingestion.CATALOGUE_FILE),
      rating_range=(scale.low, scale.high),
      has_demographics=movielens_formats.HAS_DEMOGRAPHICS[dataset], span_period=span_period)
  return dataclasses.replace(
      layout, schema_path=schema_lib.schema_path(schema_lib.for_data(layout), data_root))


def prepare(options: ingestion.IngestionOptions, data_root: str) -> ingestion.PreparedData:
  """Ingests into a local temporary folder, then writes the layout under `data_root`."""
  from pipeline import schema as schema_lib  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory(prefix='movielens-prepare-') as local:
    prepared = ingestion.prepare_examples(options, local)
    dataset = prepared.dataset
    # The splits (with --span, every span and this run's window) and the catalogue; the data
    # summary last, once everything it describes is there.
    for path in _files(prepared.input_base):
      if path not in (ingestion.INFO_FILE, ingestion.REJECTED_FILE):
        atomic_files.copy(os.path.join(prepared.input_base, path), os.path.join(data_root, path))
    schema_lib.write_schema(schema_lib.for_data(prepared), data_root)
    atomic_files.copy(os.path.join(prepared.input_base, ingestion.INFO_FILE),
                      os.path.join(data_root, ingestion.INFO_FILE))
    if prepared.info.get('rejected_file'):  # --on-bad-rows skip
      atomic_files.copy(prepared.info['rejected_file'],
                        os.path.join(data_root, ingestion.REJECTED_FILE))
      print(ingestion.describe_rejected_rows(
          dict(prepared.info, rejected_file=os.path.join(data_root, ingestion.REJECTED_FILE))),
            flush=True)
    print(f'{dataset}: {prepared.info["num_ratings"]["train"]} train / '
          f'{prepared.info["num_ratings"]["eval"]} eval ratings -> {data_root}', flush=True)
    sampled = ingestion.describe_eval_sample(prepared.info)
    if sampled:
      print(sampled, flush=True)
  return data_layout(data_root, dataset, options.span)


def _check_append(args: argparse.Namespace, flag: str) -> None:
  if '://' in args.data_root:
    raise ValueError(f'{flag} writes a local data root (or one mounted locally); '
                     f'{args.data_root} is not one')
  if not args.data_dir:
    raise ValueError(f'{flag} needs --data-dir: the MovieLens folder whose users and '
                     'movies the new ratings refer to')


def append_from(args: argparse.Namespace) -> int:
  """--append-from: every file of the inbox not handled before; 2 when one was refused."""
  from components.data import span_inbox  # pylint: disable=import-outside-toplevel
  _check_append(args, '--append-from')
  outcomes = span_inbox.append_inbox(args.data_root, args.append_from, args.data_dir,
                                     args.on_bad_rows)
  for outcome in outcomes:
    print(outcome.message, file=sys.stderr if outcome.status == span_inbox.REFUSED
          else sys.stdout, flush=True)
  if not outcomes:
    print(f'{args.append_from}: nothing new (every file was handled before)', flush=True)
  return 2 if any(o.status == span_inbox.REFUSED for o in outcomes) else 0


def append(args: argparse.Namespace) -> None:
  """--append-span: the new span(s), validated, into the layout at --data-root."""
  from components.data import span_append  # pylint: disable=import-outside-toplevel
  _check_append(args, '--append-span')
  info = span_append.append_spans(args.data_root, args.append_span, args.data_dir,
                                  args.on_bad_rows)
  appended = info['appended']
  print(f'{args.append_span}: {appended["ratings"]} ratings appended as span(s) '
        f'{", ".join(map(str, appended["spans"]))} -> {args.data_root}', flush=True)
  rejected = ingestion.describe_rejected_rows(dict(
      appended, rejected_file=os.path.join(args.data_root, ingestion.REJECTED_FILE)))
  if rejected:
    print(rejected, flush=True)


def _files(folder: str):
  """Every file under `folder`, as paths relative to it, sorted."""
  return sorted(os.path.relpath(os.path.join(root, name), folder)
                for root, _, names in os.walk(folder) for name in names)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog='python -m pipeline.prepare_data',
                                   description=__doc__.split('\n')[0])
  parser.add_argument('--data-root', required=True,
                      help='where the prepared data goes (a local path, gs://, s3://)')
  cli.add_data_arguments(parser)
  appending = parser.add_mutually_exclusive_group()
  appending.add_argument('--append-span', metavar='FILE',
                         help='append FILE\'s ratings (the dataset\'s ratings format, all '
                              'later than the last span) to the span layout at --data-root as '
                              'its next span(s); users and movies from --data-dir (a local '
                              'root only)')
  appending.add_argument('--append-from', metavar='DIR',
                         help='append every file of DIR not handled before, in name order, '
                              'as --append-span would (names starting with "." are left '
                              'alone); a refused file is noted and not retried until it '
                              'changes or is renamed, and the files after it are still '
                              'appended (exit 2 when one was refused). For a scheduled data '
                              'job')
  return parser


def main(argv=None) -> int:
  args = build_parser().parse_args(argv)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  (TFX's filesystem layer)
  try:
    if args.append_from:
      return append_from(args)
    if args.append_span:
      append(args)
    else:
      prepare(cli.ingestion_options(args), args.data_root)
  except (movielens_formats.IngestionError, movielens_download.DownloadError, ValueError,
          OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except tf.errors.OpError as e:  # the filesystem refused: a local path, gs://, s3://, ...
    print(f'error: cannot write the prepared data under {args.data_root}: {e.message}',
          file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
