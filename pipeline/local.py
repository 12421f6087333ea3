"""One local run: schema, DAG, LocalDagRunner with progress, then the run summary, TF Serving's
models.config and the report."""

import datetime
import os
import time
from typing import Sequence, TextIO

from tfx import components as tfx_components
from tfx.orchestration import metadata

from components.tfx import anomalies_gate
from components.data import ingestion
from components.models import model_names as names
from pipeline import concurrent_runner
from pipeline import configs
from pipeline import pipeline as pipeline_def
from pipeline import progress as progress_lib
from pipeline import report
from pipeline import run_summary
from pipeline import schema as schema_lib
from serving import model_config


# The steps whose executors hold much memory: in processes of their own on big data.
BIG_STEPS = (tfx_components.CsvExampleGen, tfx_components.StatisticsGen,
             tfx_components.Transform, tfx_components.Trainer, tfx_components.Evaluator)


def own_process_ids(settings: configs.PipelineSettings, tfx_pipeline,
                    num_ratings: int) -> list:
  """Ids of the components whose executors run in processes of their own (configs.py
  `own_processes_from_ratings`)."""
  if not settings.executors_in_own_processes(num_ratings):
    return []
  return [c.id for c in tfx_pipeline.components if isinstance(c, BIG_STEPS)]


def run(settings: configs.PipelineSettings, prepared: ingestion.PreparedData,
        model_names: Sequence[str], stdout: TextIO, stderr: TextIO, log_path: str,
        ingestion_seconds: float = 0.0, max_parallel: int = 2) -> int:
  """Runs the pipeline, printing progress to `stderr` and the summary to `stdout`.

  Components that do not depend on each other run up to `max_parallel` at a time
  (pipeline/concurrent_runner.py). Returns the process exit code: 0 when the run finished, 1
  when it failed.
  """
  prepared = schema_lib.with_schema(prepared, settings.pipeline_root)
  tfx_pipeline = pipeline_def.create_pipeline(
      settings, prepared, model_names,
      metadata_connection_config=metadata.sqlite_metadata_connection_config(
          settings.metadata_path))
  started_at = datetime.datetime.now(datetime.timezone.utc)
  print(f'Running {len(tfx_pipeline.components)} components (logs: {log_path})',
        file=stderr, flush=True)
  started = time.monotonic()
  error = None
  progress = progress_lib.ComponentProgress(stderr)
  try:
    with progress_lib.track_components(progress):
      concurrent_runner.ConcurrentLocalDagRunner(
          max_parallel, first=(names.CONTENT_BASED,),
          own_process=own_process_ids(settings, tfx_pipeline, prepared.num_ratings),
      ).run(tfx_pipeline)
  except anomalies_gate.DataAnomaliesError as e:
    error = str(e)
  except Exception as e:  # pylint: disable=broad-except  (reported in the summary, exit 1)
    error = (f'{progress.failed_node or "the pipeline"} failed: {type(e).__name__}: {e}'
             f' (details in {log_path})')
  summary = run_summary.build(settings, prepared, model_names, progress, started_at,
                              pipeline_seconds=time.monotonic() - started,
                              ingestion_seconds=ingestion_seconds, error=error)
  path = run_summary.write(summary, settings.output_dir)
  print(run_summary.render(summary), file=stdout)
  print(f'Run summary: {path}', file=stdout, flush=True)
  if os.path.isdir(settings.serving_dir):
    config_path = model_config.write(settings.serving_dir, configs.MODEL_NAMES)
    print(f'TF Serving config: {config_path}', file=stdout, flush=True)
  try:
    print(f'Report: {report.write_report(settings.output_dir)}', file=stdout, flush=True)
  except Exception as e:  # pylint: disable=broad-except  (the run itself is reported above)
    print(f'error: the report could not be written: {type(e).__name__}: {e}', file=stderr,
          flush=True)
    return 1
  return 0 if summary['status'] == 'succeeded' else 1
