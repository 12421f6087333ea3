"""`<output-dir>/serving/models.config`: the ModelServerConfig that TF Serving loads.

    tensorflow_model_server --model_config_file=<output-dir>/serving/models.config ...

Lists every model that has a pushed version under `<output-dir>/serving/<model>/<version>/` (the
Pusher's layout), with TF Serving's default version policy (the latest version is served).
Written after each run, atomically (write then rename).
"""

import os
import tempfile
from typing import List, Sequence

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

CONFIG_FILE = 'models.config'


def served_models(serving_dir: str, model_names: Sequence[str]) -> List[str]:
  """The models in `model_names` with at least one numeric version folder."""
  return [name for name in model_names
          if os.path.isdir(os.path.join(serving_dir, name))
          and any(v.isdigit() for v in os.listdir(os.path.join(serving_dir, name)))]


def write(serving_dir: str, model_names: Sequence[str]) -> str:
  """Writes the config for the served ones of `model_names`; returns its path."""
  config = model_server_config_pb2.ModelServerConfig()
  for name in served_models(serving_dir, model_names):
    model = config.model_config_list.config.add()
    model.name = name
    model.base_path = os.path.abspath(os.path.join(serving_dir, name))
    model.model_platform = 'tensorflow'
  os.makedirs(serving_dir, exist_ok=True)
  path = os.path.join(serving_dir, CONFIG_FILE)
  fd, tmp = tempfile.mkstemp(dir=serving_dir, prefix='.models-config-')
  with os.fdopen(fd, 'w', encoding='utf-8') as f:
    f.write(text_format.MessageToString(config))
  os.replace(tmp, path)
  return path
