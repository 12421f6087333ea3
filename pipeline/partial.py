"""Parts of the pipeline run alone, for the tests and benchmarks of one step: the data prepared
with its curated schema, and some of the DAG's components run through TFX's LocalDagRunner with
the settings' ML Metadata store, as the pipeline runs them."""

import os
from typing import Sequence

from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local import local_dag_runner

from components.data import ingestion
from pipeline import configs
from pipeline import schema


def prepared_with_schema(data_dir: str, folder: str) -> ingestion.PreparedData:
  """`data_dir` prepared as a local run prepares it, under `folder`, with its schema."""
  data = ingestion.prepare_examples(ingestion.IngestionOptions(data_dir=data_dir),
                                    os.path.join(folder, 'prepared'))
  return schema.with_schema(data, os.path.join(folder, 'schema'))


def run_components(settings: configs.PipelineSettings, components: Sequence,
                   name: str = 'partial', enable_cache: bool = False) -> None:
  """Runs `components` (and nothing else) at the settings' pipeline root and store."""
  local_dag_runner.LocalDagRunner().run(tfx_pipeline.Pipeline(
      pipeline_name=name, pipeline_root=settings.pipeline_root, components=list(components),
      metadata_connection_config=metadata.sqlite_metadata_connection_config(
          settings.metadata_path), enable_cache=enable_cache))
