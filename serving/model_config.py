"""`<output-dir>/serving/models.config`: the ModelServerConfig that TF Serving loads.

    tensorflow_model_server --model_config_file=<output-dir>/serving/models.config ...

Lists every model that has a pushed version under `<output-dir>/serving/<model>/<version>/` (the
Pusher's layout), with TF Serving's default version policy (the latest version is served).
`models.container.config` is the same list for a container that mounts the serving folder at
`/models` (serving/docker-compose.yml, serving/k8s.yaml). Both are written after each run,
atomically (write then rename).
"""

import os
from typing import List, Optional, Sequence

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from components import atomic_files

CONFIG_FILE = 'models.config'
CONTAINER_CONFIG_FILE = 'models.container.config'
CONTAINER_MOUNT = '/models'


def version_folders(base_path: str) -> List[int]:
  """The numeric version folders under a model's base path, ascending ([] if none)."""
  if not os.path.isdir(base_path):
    return []
  return sorted(int(name) for name in os.listdir(base_path)
                if name.isdigit() and os.path.isdir(os.path.join(base_path, name)))


def latest_version_path(base_path: str) -> Optional[str]:
  """The folder of the highest version (the one TF Serving serves), or None."""
  versions = version_folders(base_path)
  return os.path.join(base_path, str(versions[-1])) if versions else None


def served_models(serving_dir: str, model_names: Sequence[str]) -> List[str]:
  """The models in `model_names` with at least one numeric version folder."""
  return [name for name in model_names if version_folders(os.path.join(serving_dir, name))]


def _config(names: Sequence[str], base: str) -> str:
  config = model_server_config_pb2.ModelServerConfig()
  for name in names:
    model = config.model_config_list.config.add()
    model.name = name
    model.base_path = f'{base}/{name}'
    model.model_platform = 'tensorflow'
  return text_format.MessageToString(config)


def _write_atomically(folder: str, name: str, text: str) -> str:
  return atomic_files.write(os.path.join(folder, name), text)


def write(serving_dir: str, model_names: Sequence[str]) -> str:
  """Writes both configs for the served ones of `model_names`; returns the host one's path."""
  names = served_models(serving_dir, model_names)
  os.makedirs(serving_dir, exist_ok=True)
  _write_atomically(serving_dir, CONTAINER_CONFIG_FILE, _config(names, CONTAINER_MOUNT))
  return _write_atomically(serving_dir, CONFIG_FILE,
                           _config(names, os.path.abspath(serving_dir)))


def read_config(path: str) -> model_server_config_pb2.ModelServerConfig:
  """A ModelServerConfig text proto (`--model_config_file`), with a clear error if invalid."""
  try:
    with open(path, encoding='utf-8') as f:
      config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
  except OSError as e:
    raise ValueError(f'{path}: cannot read the model config: {e.strerror}') from None
  except text_format.ParseError as e:
    raise ValueError(f'{path}: not a ModelServerConfig text proto: {e}') from None
  if not config.model_config_list.config:
    raise ValueError(f'{path}: the model config lists no models (model_config_list)')
  return config


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
  """The config `--model_name NAME --model_base_path PATH` stands for."""
  config = model_server_config_pb2.ModelServerConfig()
  model = config.model_config_list.config.add()
  model.name, model.base_path, model.model_platform = name, os.path.abspath(base_path), 'tensorflow'
  return config
