"""Write then rename: a reader sees a file whole or not at all, never half-written.

Every file the project publishes (prepared data's side files, the schema, the run summary, TF
Serving's models.config, a SavedModel's patched graph, benchmark results) goes through
`replace`: the content is written to a staging file beside the target, which is renamed over
the target only once it is complete and closed. If writing fails, the staging file is removed
and the target is left as it was. Local paths use `os.replace` (atomic on POSIX); paths with a
scheme (`gs://`, `s3://`, `ram://`) go through TFX's file I/O, imported only then, where the
rename is as atomic as that file system makes it.

Folders (a download's extracted data, the prepared splits, a pushed model version, the report)
go through `publish_folder`: filled in a staging folder beside the target, renamed into place.
"""

import contextlib
import os
import shutil
import uuid
from typing import IO, Iterator, Optional, Union


def _remote(path: str) -> bool:
  return '://' in path


def staging_path(path: str) -> str:
  """A hidden, unique name beside `path` (the same folder, so the rename stays on one device)."""
  folder, name = os.path.split(path)
  return os.path.join(folder, f'.{name}.{uuid.uuid4().hex[:12]}.partial')


@contextlib.contextmanager
def replace(path: str, mode: str = 'w', encoding: str = 'utf-8',
            newline: Optional[str] = None) -> Iterator[IO]:
  """Opens a staging file for `path` in `mode` ('w' or 'wb'); renames it over `path` when the
  block ends without error, removes it otherwise. The folder is created if missing. `newline`
  as `open`'s (local text files: '' for csv)."""
  if mode not in ('w', 'wb'):
    raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
  staging = staging_path(path)
  text = {} if 'b' in mode else {'encoding': encoding, 'newline': newline}
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


class StagedFolder:
  """The folder `publish_folder` yields: fill `path`; `publish` says what becomes `target`
  (`path` itself by default, a folder inside it, or None for nothing). The block may rename
  `target` once it knows the name, in the same folder (one device, one rename)."""

  def __init__(self, path: str, target: str):
    self.path, self.target = path, target
    self.publish = path


KEEP, REPLACE = 'keep', 'replace'  # what publish_folder does with a target that exists


@contextlib.contextmanager
def publish_folder(target: str, if_exists: str = KEEP) -> Iterator[StagedFolder]:
  """A folder appears whole or not at all: yields a fresh hidden staging folder beside `target`
  (local paths only: object stores have no folder rename). When the block ends without error,
  `publish` is renamed to `target`; an existing target is kept (KEEP: a concurrent twin or an
  earlier identical push won) or swapped out (REPLACE: the old one is removed only after the
  new one is in place). The staging folder is removed in every case."""
  if if_exists not in (KEEP, REPLACE):
    raise ValueError(f'if_exists must be {KEEP!r} or {REPLACE!r}, not {if_exists!r}')
  if _remote(target):
    raise ValueError(f'{target}: folders are published by rename, on local paths only')
  parent = os.path.dirname(os.path.abspath(target))
  os.makedirs(parent, exist_ok=True)
  staged = StagedFolder(staging_path(target), target)
  os.mkdir(staged.path)
  old = None
  try:
    yield staged
    if staged.publish is None:
      return
    target = staged.target
    if os.path.dirname(os.path.abspath(target)) != parent:
      raise ValueError(f'{target}: not in {parent}, where the staging folder is')
    if os.path.exists(target):
      if if_exists == KEEP:
        return
      old = staging_path(target)
      os.replace(target, old)
    try:
      os.rename(staged.publish, target)
    except OSError:
      if if_exists == KEEP and os.path.exists(target):  # a twin published it meanwhile
        return
      if old:  # put the previous one back
        os.replace(old, target)
        old = None
      raise
  finally:
    shutil.rmtree(staged.path, ignore_errors=True)
    if old:
      shutil.rmtree(old, ignore_errors=True)
