"""A push never shows a server a partial version folder, and an unblessed model is not pushed."""

import os
import threading

from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.tfx import atomic_pusher


def _model(tmp_path, files=400):
  """A Model artifact whose SavedModel folder has many files (slow enough to copy to watch)."""
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'model')
  served = tmp_path / 'model' / 'Format-Serving'
  (served / 'variables').mkdir(parents=True)
  (served / 'saved_model.pb').write_bytes(b'graph' * 1000)
  for i in range(files):
    (served / 'variables' / f'variables.data-{i:05d}-of-{files:05d}').write_bytes(b'x' * 20000)
  return model, sorted(os.path.relpath(os.path.join(d, f), served)
                       for d, _, names in os.walk(served) for f in names)


def _push(executor_class, tmp_path, blessed=True):
  model, files = _model(tmp_path)
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  blessing.set_int_custom_property('blessed', int(blessed))
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed')
  base = tmp_path / 'serving' / 'model'
  base.mkdir(parents=True)
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base)))
  seen, done = [], threading.Event()

  def watch():  # what a server polling the folder would find, as often as it can look
    while True:
      finished = done.is_set()  # then one more look: the folder the push left
      for name in os.listdir(base):
        if name.isdigit():
          folder = base / name
          seen.append(sorted(os.path.relpath(os.path.join(d, f), folder)
                             for d, _, names in os.walk(folder) for f in names))
      if finished:
        return

  watcher = threading.Thread(target=watch)
  watcher.start()
  try:
    executor_class().Do({specs.MODEL_KEY: [model], specs.MODEL_BLESSING_KEY: [blessing]},
                        {specs.PUSHED_MODEL_KEY: [pushed]},
                        {specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)})
  finally:
    done.set()
    watcher.join()
  return base, files, seen, pushed


def test_a_version_folder_appears_complete(tmp_path):
  base, files, seen, pushed = _push(atomic_pusher.Executor, tmp_path)
  versions = [name for name in os.listdir(base) if name.isdigit()]
  assert len(versions) == 1 and os.listdir(base) == versions  # no staging left behind
  assert pushed.get_string_custom_property('pushed_destination') == str(base / versions[0])
  assert seen and all(listing == files for listing in seen)


def test_tfx_pusher_alone_shows_partial_folders(tmp_path):
  """What the atomic Pusher prevents (so the test above can fail)."""
  _, files, seen, _ = _push(tfx_pusher_executor.Executor, tmp_path)
  assert any(listing != files for listing in seen)


def test_an_unblessed_model_is_not_pushed(tmp_path):
  base, _, seen, pushed = _push(atomic_pusher.Executor, tmp_path, blessed=False)
  assert os.listdir(base) == [] and not seen
  assert pushed.get_int_custom_property('pushed') == 0
