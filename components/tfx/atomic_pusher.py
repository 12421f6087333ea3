"""A Pusher whose new model version appears in the serving folder complete or not at all.

TFX's Pusher copies the SavedModel file by file into `<base>/<version>/` (saved_model.pb last).
A server polling `<base>` (TF Serving's file system source, serving/model_store.py) lists
numeric folders, so it can see a version whose variables are still being copied. This executor
lets TFX's Pusher write into a hidden staging folder under `<base>` (a server ignores names that
are not numbers) and then renames the finished version folder into place: one rename, atomic on
a local or POSIX file system. Blessing is TFX's own: an unblessed model is never copied.

Object stores (gs://, s3://) have no directory rename: there the push is TFX's own copy, which
writes saved_model.pb last (a SavedModel is loadable only once that file exists).
"""

import os

from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import atomic_files


class Executor(pusher_executor.Executor):
  """TFX's Pusher executor, pushing through a staging folder and one rename."""

  def Do(self, input_dict, output_dict, exec_properties):
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
                              destination)
    base = destination.filesystem.base_directory
    if '://' in base:
      super().Do(input_dict, output_dict, exec_properties)
      return
    # TFX's Pusher picks the version (the target's name) inside the staging folder; KEEP: a
    # version pushed already stays (TFX's Pusher skips those too).
    with atomic_files.publish_folder(os.path.join(base, 'push'), atomic_files.KEEP) as staged:
      staged.publish = None  # unless blessed and pushed, below
      destination.filesystem.base_directory = staged.path
      properties = dict(exec_properties)
      properties[standard_component_specs.PUSH_DESTINATION_KEY] = proto_utils.proto_to_json(
          destination)
      super().Do(input_dict, output_dict, properties)
      pushed = artifact_utils.get_single_instance(
          output_dict[standard_component_specs.PUSHED_MODEL_KEY])
      if pushed.get_int_custom_property('pushed') == 1:
        version = pushed.get_string_custom_property('pushed_version')
        staged.publish = os.path.join(staged.path, version)
        staged.target = os.path.join(base, version)
        pushed.set_string_custom_property('pushed_destination', staged.target)


EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
