"""The curated schema, adapted to the dataset at hand and written where ImportSchemaGen reads it.

`schema/schema.pbtxt` describes MovieLens 100K/1M. Other formats differ in two declared ways
(no demographics, another rating scale); everything else must match. The adapted schema is
written under a name derived from its content, so a changed schema is a new path and TFX's
cache never serves a stale one.
"""

import dataclasses
import hashlib
import os

from google.protobuf import text_format
from tfx.dsl.io import fileio
from tensorflow_metadata.proto.v0 import schema_pb2

from components import atomic_files
from components.data import features
from components.data import ingestion

CURATED_SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              'schema', 'schema.pbtxt')


def load_schema(path: str = CURATED_SCHEMA) -> schema_pb2.Schema:
  with open(path, encoding='utf-8') as f:
    return text_format.Parse(f.read(), schema_pb2.Schema())


def schema_for_dataset(has_demographics: bool, rating_low: float,
                       rating_high: float) -> schema_pb2.Schema:
  schema = load_schema()
  if not has_demographics:
    kept = [f for f in schema.feature if f.name not in features.DEMOGRAPHIC_FEATURES]
    del schema.feature[:]
    schema.feature.extend(kept)
    used_domains = {f.domain for f in kept if f.HasField('domain')}
    kept_domains = [d for d in schema.string_domain if d.name in used_domains]
    del schema.string_domain[:]
    schema.string_domain.extend(kept_domains)
  for feature in schema.feature:
    if feature.name == features.LABEL:
      feature.float_domain.min = rating_low
      feature.float_domain.max = rating_high
  return schema


def schema_path(schema: schema_pb2.Schema, root: str) -> str:
  """Where `write_schema` puts `schema` under `root`: `<root>/schema/<content hash>/schema.pbtxt`."""
  text = text_format.MessageToString(schema)
  return os.path.join(root, 'schema', hashlib.sha256(text.encode()).hexdigest()[:16],
                      'schema.pbtxt')


def for_data(prepared: ingestion.PreparedData) -> schema_pb2.Schema:
  """The curated schema adapted to `prepared`'s rating range and demographics."""
  return schema_for_dataset(prepared.has_demographics, *prepared.rating_range)


def with_schema(prepared: ingestion.PreparedData, root: str) -> ingestion.PreparedData:
  """`prepared` with its schema written under `root` (`write_schema`) and its path set."""
  return dataclasses.replace(prepared, schema_path=write_schema(for_data(prepared), root))


def write_schema(schema: schema_pb2.Schema, root: str) -> str:
  """Writes `schema` to `schema_path(schema, root)` (write then rename; any TFX filesystem:
  local, gs://, s3://) and returns that path."""
  path = schema_path(schema, root)
  if not fileio.exists(path):
    atomic_files.write(path, text_format.MessageToString(schema))
  return path
