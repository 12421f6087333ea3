"""components/atomic_files.py: a target is replaced whole or left as it was, locally and on a
TFX file system (TensorFlow's ram://)."""

import os

import pytest

from components import atomic_files


def test_write_replaces_the_file_and_leaves_no_staging_file(tmp_path):
  path = str(tmp_path / 'sub' / 'out.json')  # the folder is created
  atomic_files.write(path, '{"a": 1}')
  atomic_files.write(path, b'{"a": 2}')
  assert open(path, encoding='utf-8').read() == '{"a": 2}'
  assert os.listdir(tmp_path / 'sub') == ['out.json']


def test_a_failure_while_writing_keeps_the_old_file(tmp_path):
  path = str(tmp_path / 'out.txt')
  atomic_files.write(path, 'old')
  with pytest.raises(RuntimeError, match='disk full'):
    with atomic_files.replace(path) as handle:
      handle.write('half of the new')
      assert os.path.exists(path) and open(path, encoding='utf-8').read() == 'old'
      raise RuntimeError('disk full')
  assert open(path, encoding='utf-8').read() == 'old'
  assert os.listdir(tmp_path) == ['out.txt']


def test_copy_streams_a_file_to_a_new_place(tmp_path):
  source = tmp_path / 'big.bin'
  source.write_bytes(os.urandom(3 << 20))
  target = str(tmp_path / 'copy' / 'big.bin')
  assert atomic_files.copy(str(source), target) == target
  assert open(target, 'rb').read() == source.read_bytes()


def test_paths_with_a_scheme_go_through_tfx_file_io():
  from tfx.dsl.io import fileio  # pylint: disable=import-outside-toplevel
  path = 'ram://atomic-files-test/folder/out.txt'
  atomic_files.write(path, 'first')
  with pytest.raises(RuntimeError):
    with atomic_files.replace(path) as handle:
      handle.write('second')
      raise RuntimeError('stopped')
  with fileio.open(path) as f:
    assert f.read() == 'first'
  assert fileio.listdir('ram://atomic-files-test/folder') == ['out.txt']
  with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
    with atomic_files.replace(path, 'a'):
      pass
