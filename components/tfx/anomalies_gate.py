"""A gate between ExampleValidator and Transform: anomalies stop the run before any training.

Stock ExampleValidator only records anomalies; the pipeline would go on and train on data that
broke the schema. This component fails with the anomalies spelled out, and otherwise passes the
schema on, so Transform (and everything after it) depends on a clean validation.
"""

import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as validator_executor
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts

SCHEMA_FILE = 'schema.pbtxt'


class DataAnomaliesError(RuntimeError):
  """ExampleValidator found the data inconsistent with the curated schema."""


def describe_anomalies(anomalies_uri: str, split_names: List[str]) -> List[str]:
  """One human line per anomaly: split, feature, short and long description."""
  lines = []
  for split in split_names:
    path = os.path.join(anomalies_uri, f'Split-{split}', validator_executor.DEFAULT_FILE_NAME)
    anomalies = anomalies_pb2.Anomalies()
    with fileio.open(path, 'rb') as f:
      anomalies.ParseFromString(f.read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f'split {split}, feature {feature!r}: '
                   f'{info.short_description} ({info.description})')
    if anomalies.HasField('dataset_anomaly_info'):
      info = anomalies.dataset_anomaly_info
      lines.append(f'split {split}, dataset: {info.short_description} ({info.description})')
  return lines


@component
def AnomaliesGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    schema: InputArtifact[standard_artifacts.Schema],
    validated_schema: OutputArtifact[standard_artifacts.Schema]) -> None:
  """Raises DataAnomaliesError on any anomaly; otherwise outputs the schema unchanged."""
  problems = describe_anomalies(anomalies.uri,
                                artifact_utils.decode_split_names(anomalies.split_names))
  if problems:
    raise DataAnomaliesError('ExampleValidator found anomalies against the curated schema:\n  '
                             + '\n  '.join(problems))
  fileio.copy(os.path.join(schema.uri, SCHEMA_FILE),
              os.path.join(validated_schema.uri, SCHEMA_FILE), overwrite=True)
