"""The project's Transform (components/tfx/batch_io_transform.py) reads its input through the
batch-reading source and writes the transformed examples the stock TFX Transform writes: the
same examples, in files of the same names, on real ML-100K, each run through TFX's
LocalDagRunner as the pipeline runs it."""

import os

import tensorflow as tf
from tfx import components as tfx_components
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen

from components.tfx import batch_io_transform
from pipeline import configs
from pipeline import partial
from pipeline import pipeline as pipeline_def


def _transformed(tmp_path, data, component):
  """{file name: records} of the training split `component` transforms."""
  settings = configs.PipelineSettings(output_dir=str(tmp_path))
  example_gen, _ = pipeline_def.examples_and_statistics(settings, data)
  schema_gen = ImportSchemaGen(schema_file=data.schema_path)
  transform = pipeline_def.transform_component(example_gen.outputs['examples'],
                                               schema_gen.outputs['schema'], 'test', component)
  partial.run_components(settings, [example_gen, schema_gen, transform])
  [split] = [root for root, dirs, _ in os.walk(tmp_path / 'tfx' / 'Transform'
                                                / 'transformed_examples')
             if os.path.basename(root) == 'Split-train']
  assert not [name for name in os.listdir(os.path.dirname(split)) if 'staging' in name]
  return {name: [r.numpy() for r in tf.data.TFRecordDataset(os.path.join(split, name),
                                                            compression_type='GZIP')]
          for name in sorted(os.listdir(split))}


def test_the_same_transformed_examples_as_stock_transform(tmp_path, ml100k_dir,
                                                          batch_source_calls):
  data = partial.prepared_with_schema(ml100k_dir, str(tmp_path))
  ours = _transformed(tmp_path / 'ours', data, batch_io_transform.Transform)
  # The training split read twice through the batch source: to analyse, then to transform.
  assert len(batch_source_calls) == 2
  assert all(pattern[0].endswith('Split-train/*') for pattern in batch_source_calls)
  stock = _transformed(tmp_path / 'stock', data, tfx_components.Transform)
  assert len(batch_source_calls) == 2
  assert list(ours) == list(stock) == ['transformed_examples-00000-of-00001.gz']
  ours, stock = ours.popitem()[1], stock.popitem()[1]
  assert len(ours) == data.info['num_ratings']['train']
  # The same examples: serialized with their features in one order (the encoders' map order
  # is not fixed), sorted.
  canonical = lambda records: sorted(tf.train.Example.FromString(r).SerializeToString(
      deterministic=True) for r in records)
  assert canonical(ours) == canonical(stock)
