"""One local run: schema, DAG, LocalDagRunner with progress, then the run summary."""

import datetime
import sys
import time
from typing import Sequence

from tfx import v1 as tfx

from components import anomalies_gate
from components import ingestion
from pipeline import configs
from pipeline import pipeline as pipeline_def
from pipeline import progress as progress_lib
from pipeline import run_summary
from pipeline import schema as schema_lib


def run(settings: configs.PipelineSettings, prepared: ingestion.PreparedData,
        model_names: Sequence[str], verbose: bool = False, ingestion_seconds: float = 0.0) -> int:
  """Runs the pipeline; returns the process exit code (0: finished, 1: the run failed)."""
  scale = prepared.info['rating_scale']
  schema_path = schema_lib.write_schema(
      schema_lib.schema_for_dataset(prepared.has_demographics, scale['low'], scale['high']),
      settings.pipeline_root)
  tfx_pipeline = pipeline_def.create_pipeline(
      settings, prepared.input_base, schema_path, [scale['low'], scale['high']], model_names,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          settings.metadata_path))
  progress = progress_lib.attach(verbose)
  started_at = datetime.datetime.now(datetime.timezone.utc)
  started = time.monotonic()
  error = None
  try:
    tfx.orchestration.LocalDagRunner().run(tfx_pipeline)
  except anomalies_gate.DataAnomaliesError as e:
    error = str(e)
  except Exception as e:  # pylint: disable=broad-except  (reported in the summary, exit 1)
    error = f'{progress.current or "pipeline"} failed: {type(e).__name__}: {e}'
  progress.failed()
  summary = run_summary.build(settings, prepared, model_names, progress, started_at,
                              pipeline_seconds=time.monotonic() - started,
                              ingestion_seconds=ingestion_seconds, error=error)
  path = run_summary.write(summary, settings.output_dir)
  print(run_summary.render(summary), file=sys.stdout)
  print(f'Run summary: {path}', file=sys.stdout)
  return 0 if error is None else 1
