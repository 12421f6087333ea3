"""CsvExampleGen whose column types come from the feature contract instead of being guessed.

Stock CsvExampleGen infers each column's type separately for every split from the values it
sees, so digits-only zip codes or IDs turn into INT in one split and BYTES in another (and lose
leading zeros). This keeps the stock component, reader and tf.Example encoding, and replaces
only the inference step by `features.RAW_FEATURE_TYPES`. A column the contract does not know is
kept as a string, so ExampleValidator still reports it against the curated schema.
"""

from typing import Any, Dict, List

import apache_beam as beam
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx_bsl.coders import csv_decoder

from components import features

_COLUMN_TYPES = {
    features.STRING: csv_decoder.ColumnType.STRING,
    features.INT: csv_decoder.ColumnType.INT,
    features.FLOAT: csv_decoder.ColumnType.FLOAT,
}


def column_infos(column_names: List[str]) -> List[csv_decoder.ColumnInfo]:
  return [
      csv_decoder.ColumnInfo(
          name, _COLUMN_TYPES[features.RAW_FEATURE_TYPES.get(name, features.STRING)])
      for name in column_names
  ]


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _TypedCsvToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                       split_pattern: str) -> beam.pvalue.PCollection:
  pattern = '/'.join([exec_properties[standard_component_specs.INPUT_BASE_KEY].rstrip('/'),
                      split_pattern])
  csv_files = fileio.glob(pattern)
  if not csv_files:
    raise RuntimeError(f'Split pattern {pattern} does not match any files.')
  column_names = io_utils.load_csv_column_names(csv_files[0])
  for csv_file in csv_files[1:]:
    if io_utils.load_csv_column_names(csv_file) != column_names:
      raise RuntimeError(f'Files in the same split {pattern} have different headers.')
  return (
      pipeline
      | 'CreateFilenames' >> beam.Create(csv_files)
      | 'ReadFromText' >> beam.ParDo(csv_executor._ReadCsvRecordsFromTextFile())  # pylint: disable=protected-access
      | 'ParseCSVLine' >> beam.ParDo(csv_decoder.ParseCSVLine(delimiter=','))
      | 'ExtractParsedCSVLines' >> beam.Keys()
      | 'ToTFExample' >> beam.ParDo(csv_executor._ParsedCsvToTfExample(),  # pylint: disable=protected-access
                                    column_infos(column_names)))


class Executor(csv_executor.Executor):

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    return _TypedCsvToExample


class CsvExampleGen(tfx.components.CsvExampleGen):
  """The stock CsvExampleGen with declared column types (see the module docstring)."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
