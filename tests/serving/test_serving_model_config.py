"""models.config: the ModelServerConfig TF Serving loads, listing the served models."""

import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import model_config


def test_lists_each_model_with_a_pushed_version(tmp_path):
  serving = tmp_path / 'serving'
  (serving / 'content_based' / '1700000000').mkdir(parents=True)
  (serving / 'collaborative_filtering').mkdir()  # nothing pushed yet
  path = model_config.write(str(serving), ['content_based', 'collaborative_filtering'])
  assert path == os.path.join(str(serving), 'models.config')
  with open(path, encoding='utf-8') as f:
    config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
  models = config.model_config_list.config
  assert [m.name for m in models] == ['content_based']
  assert models[0].base_path == str(serving / 'content_based')
  assert models[0].model_platform == 'tensorflow'
  assert not [n for n in os.listdir(serving) if n.endswith('.partial')]  # no staging file left


def test_container_config_points_at_the_mount(tmp_path):
  serving = tmp_path / 'serving'
  (serving / 'collaborative_filtering' / '1700000000').mkdir(parents=True)
  (serving / 'collaborative_filtering' / 'not-a-version').mkdir()
  model_config.write(str(serving), ['content_based', 'collaborative_filtering'])
  with open(serving / 'models.container.config', encoding='utf-8') as f:
    config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
  assert [(m.name, m.base_path) for m in config.model_config_list.config] == \
      [('collaborative_filtering', '/models/collaborative_filtering')]
  assert model_config.latest_version_path(str(serving / 'collaborative_filtering')) == \
      str(serving / 'collaborative_filtering' / '1700000000')
