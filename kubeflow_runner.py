"""Compiles the pipeline for Kubeflow Pipelines (KFP v2) and optionally submits or schedules it.

    python kubeflow_runner.py --output-file pipeline.json --image IMAGE \\
        --pipeline-root gs://BUCKET/root --data-root gs://BUCKET/movielens/ml-100k \\
        [--beam-arg=--runner=DataflowRunner ...] [--submit | --schedule "0 3 * * *"] --host URL

The DAG is `pipeline.create_pipeline`, the same as `local_runner.py` runs, with the same model
and blessing flags (pipeline/cli.py); TFX 1.16's KubeflowV2DagRunner writes the KFP v2 pipeline
spec (JSON, or YAML when the file name ends in .yaml). Every step runs in `--image` (the
Dockerfile), which has this project installed, so no code is packaged at compile time. The data
under `--data-root` comes from the preliminary job `python -m pipeline.prepare_data`.
`--submit` starts a run and `--schedule CRON` creates a recurring run (max concurrency 1, no
catch-up) on the KFP API at `--host`, with the `kfp` client.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import os
import sys

from components.data import movielens_formats
from components.data import spans
from pipeline import cli
from pipeline import configs


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Compile the MovieLens recommender pipeline for Kubeflow Pipelines (v2), '
                  'and submit or schedule it.',
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  add = parser.add_argument
  add('--output-file', default='pipeline.json',
      help='the compiled pipeline spec (JSON; YAML when it ends in .yaml or .yml)')
  add('--image', required=True, help='the pipeline image every step runs in (see Dockerfile)')
  add('--pipeline-root', required=True,
      help='where the steps write their artifacts (gs://, s3:// or a path every pod mounts)')
  add('--data-root', help='the prepared data (python -m pipeline.prepare_data --data-root ...); '
      'default: <pipeline-root>/data')
  add('--dataset', choices=movielens_formats.DATASETS, default=movielens_formats.ML_100K,
      help='the MovieLens format prepared under --data-root (rating scale, demographics)')
  add('--span', choices=spans.PERIODS,
      help='the data under --data-root is in time spans (prepare_data --span): each run reads '
           'the latest span, trains on the window before it and is evaluated on it')
  add('--serving-dir', help='where Pushers write <model>/<version>/ for TF Serving; '
      'default: <pipeline-root>/serving')
  add('--pipeline-name', default=configs.PIPELINE_NAME)
  cli.add_settings_arguments(parser)
  add('--submit', action='store_true', help='start a run on the KFP API at --host')
  add('--schedule', metavar='CRON',
      help='create a recurring run with this cron expression (KFP: seconds first, e.g. '
           '"0 0 3 * * *" every day at 03:00) on the KFP API at --host')
  add('--schedule-name', help='the recurring run\'s name (default: <pipeline-name> schedule)')
  add('--host', help='the KFP API endpoint, e.g. http://localhost:8080 or the Kubeflow UI URL')
  add('--experiment', default=configs.PIPELINE_NAME, help='the KFP experiment of the runs')
  args = parser.parse_args(argv)
  if (args.submit or args.schedule) and not args.host:
    parser.error('--submit and --schedule need --host (the KFP API endpoint)')
  return args


def compile_pipeline(args: argparse.Namespace) -> str:
  """Writes the KFP v2 pipeline spec of the pipeline the flags describe; returns its path."""
  from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel  (slow, noisy)
  from pipeline import pipeline as pipeline_def  # pylint: disable=import-outside-toplevel
  from pipeline import prepare_data  # pylint: disable=import-outside-toplevel
  data_root = args.data_root or os.path.join(args.pipeline_root, 'data')
  settings = cli.settings_from_args(
      args, output_dir=args.pipeline_root, pipeline_name=args.pipeline_name,
      pipeline_root_dir=args.pipeline_root,
      serving_base_dir=args.serving_dir or os.path.join(args.pipeline_root, 'serving'),
      for_kubeflow=True)
  dsl_pipeline = pipeline_def.create_pipeline(
      settings, prepare_data.data_layout(data_root, args.dataset, args.span), args.models)
  output_dir, output_file = os.path.split(os.path.abspath(args.output_file))
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=args.image),
      output_dir=output_dir, output_filename=output_file)
  runner.run(dsl_pipeline, write_out=True)
  return os.path.join(output_dir, output_file)


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    path = compile_pipeline(args)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'Pipeline spec: {path}', flush=True)
  if args.submit or args.schedule:
    from pipeline import kfp_client  # pylint: disable=import-outside-toplevel
    try:
      if args.submit:
        print(kfp_client.submit(args.host, path, args.experiment, args.pipeline_name), flush=True)
      if args.schedule:
        print(kfp_client.schedule(args.host, path, args.experiment,
                                  args.schedule_name or f'{args.pipeline_name} schedule',
                                  args.schedule), flush=True)
    except kfp_client.KfpError as e:
      print(f'error: {e}', file=sys.stderr)
      return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
