"""Transform and the Trainers call installed functions; a digest of the component code in their
properties (TFX's cache key) makes any code change re-run them, as TFX's module files did."""

import json
import shutil

import pytest

import components
from components.data import ingestion
from pipeline import configs
from pipeline import pipeline as pipeline_def


def _properties(tmp_path):
  settings = configs.PipelineSettings(output_dir=str(tmp_path / 'out'))
  data = ingestion.PreparedData(
      dataset='ml-100k', input_base=str(tmp_path / 'data'), catalogue_path='movies.csv',
      rating_range=(1.0, 5.0), has_demographics=True, schema_path='schema.pbtxt')
  built = pipeline_def.create_pipeline(settings, data)
  return {node.id: node.exec_properties for node in built.components}


def test_code_digest_is_in_transform_and_trainer_properties(tmp_path):
  code = pipeline_def.code_fingerprint()
  properties = _properties(tmp_path)
  assert properties['Transform']['preprocessing_fn'] == configs.PREPROCESSING_FN
  assert json.loads(properties['Transform']['custom_config'])['code'] == code
  for model in configs.MODEL_NAMES:
    trainer = properties[f'Trainer_{model}']
    assert trainer['run_fn'] == configs.RUN_FN and not trainer.get('module_file')
    assert json.loads(trainer['custom_config'])['code'] == code


def test_code_digest_changes_with_any_component_file(tmp_path, monkeypatch):
  copy = tmp_path / 'components'
  shutil.copytree(components.__path__[0], copy, ignore=shutil.ignore_patterns('__pycache__'))
  monkeypatch.setattr(pipeline_def.components_package, '__file__', str(copy / '__init__.py'))
  before = pipeline_def.code_fingerprint()
  assert before == pipeline_def.code_fingerprint()
  seen = {before}
  with open(copy / 'models' / 'content_based.py', 'a') as f:  # a module of a subpackage
    f.write('\n# a change\n')
  seen.add(pipeline_def.code_fingerprint())
  (copy / 'export' / 'new_module.py').write_text('X = 1\n')  # a new one
  seen.add(pipeline_def.code_fingerprint())
  (copy / 'export' / 'new_module.py').rename(copy / 'data' / 'new_module.py')  # moved
  seen.add(pipeline_def.code_fingerprint())
  assert len(seen) == 4


def test_the_pipeline_needs_the_data_s_schema(tmp_path):
  data = ingestion.PreparedData(dataset='ml-100k', input_base=str(tmp_path / 'data'),
                                catalogue_path='movies.csv', rating_range=(1.0, 5.0),
                                has_demographics=True)
  with pytest.raises(ValueError, match='no schema for the data under .*with_schema'):
    pipeline_def.create_pipeline(configs.PipelineSettings(output_dir=str(tmp_path)), data)
