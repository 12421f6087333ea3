"""Write then rename: a reader sees a file whole or not at all, never half-written.

Every file the project publishes (prepared data's side files, the schema, the run summary, TF
Serving's models.config, a SavedModel's patched graph, benchmark results) goes through
`replace`: the content is written to a staging file beside the target, which is renamed over
the target only once it is complete and closed. If writing fails, the staging file is removed
and the target is left as it was. Local paths use `os.replace` (atomic on POSIX); paths with a
scheme (`gs://`, `s3://`, `ram://`) go through TFX's file I/O, imported only then, where the
rename is as atomic as that file system makes it.
"""

import contextlib
import os
import shutil
import uuid
from typing import IO, Iterator, Union


def _remote(path: str) -> bool:
  return '://' in path


def staging_path(path: str) -> str:
  """A hidden, unique name beside `path` (the same folder, so the rename stays on one device)."""
  folder, name = os.path.split(path)
  return os.path.join(folder, f'.{name}.{uuid.uuid4().hex[:12]}.partial')


@contextlib.contextmanager
def replace(path: str, mode: str = 'w', encoding: str = 'utf-8') -> Iterator[IO]:
  """Opens a staging file for `path` in `mode` ('w' or 'wb'); renames it over `path` when the
  block ends without error, removes it otherwise. The folder is created if missing."""
  if mode not in ('w', 'wb'):
    raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
  staging = staging_path(path)
  text = {} if 'b' in mode else {'encoding': encoding}
  if _remote(path):
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel
    fileio.makedirs(os.path.dirname(path))
    opened = lambda: fileio.open(staging, mode)
    rename = lambda: fileio.rename(staging, path, overwrite=True)
    remove = fileio.remove
  else:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    opened = lambda: open(staging, mode, **text)  # pylint: disable=consider-using-with
    rename = lambda: os.replace(staging, path)
    remove = os.remove
  try:
    with opened() as handle:
      yield handle
    rename()
  except BaseException:
    with contextlib.suppress(Exception):
      remove(staging)
    raise


def write(path: str, content: Union[str, bytes]) -> str:
  """Writes `content` (text as UTF-8, or bytes) to `path` through `replace`; returns `path`."""
  with replace(path, 'wb' if isinstance(content, bytes) else 'w') as handle:
    handle.write(content)
  return path


def copy(source: str, target: str) -> str:
  """Copies `source` to `target` through `replace`, streaming (big files stay out of memory)."""
  if _remote(source):
    from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel
    opened = fileio.open(source, 'rb')
  else:
    opened = open(source, 'rb')  # pylint: disable=consider-using-with
  with opened as reader, replace(target, 'wb') as writer:
    shutil.copyfileobj(reader, writer, length=1 << 20)
  return target
