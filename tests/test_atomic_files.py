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


def test_a_folder_appears_whole_and_a_failure_leaves_nothing(tmp_path):
  target = str(tmp_path / 'data')
  with atomic_files.publish_folder(target) as staged:
    with open(os.path.join(staged.path, 'ratings.csv'), 'w', encoding='utf-8') as f:
      f.write('half')
      assert not os.path.exists(target)  # not yet visible under its name
  assert os.listdir(target) == ['ratings.csv'] and os.listdir(tmp_path) == ['data']
  with pytest.raises(RuntimeError, match='disk full'):
    with atomic_files.publish_folder(str(tmp_path / 'other')) as staged:
      raise RuntimeError('disk full')
  assert os.listdir(tmp_path) == ['data']  # no staging folder, no target


def test_an_existing_folder_is_kept_or_swapped_whole(tmp_path):
  target = str(tmp_path / 'report')
  for content, policy in (('first', atomic_files.KEEP), ('second', atomic_files.KEEP),
                          ('third', atomic_files.REPLACE)):
    with atomic_files.publish_folder(target, policy) as staged:
      with open(os.path.join(staged.path, 'index.html'), 'w', encoding='utf-8') as f:
        f.write(content)
    with open(os.path.join(target, 'index.html'), encoding='utf-8') as f:
      assert f.read() == {'first': 'first', 'second': 'first', 'third': 'third'}[content]
    assert os.listdir(tmp_path) == ['report']


def test_a_folder_inside_the_staging_one_can_be_published_under_a_later_name(tmp_path):
  with atomic_files.publish_folder(str(tmp_path / 'push')) as staged:
    os.makedirs(os.path.join(staged.path, 'zip', 'ml-100k'))
    staged.publish = os.path.join(staged.path, 'zip', 'ml-100k')
    staged.target = str(tmp_path / '17')
  assert os.listdir(tmp_path) == ['17']
  with atomic_files.publish_folder(str(tmp_path / 'push')) as staged:
    staged.publish = None  # nothing to publish
  assert os.listdir(tmp_path) == ['17']
  with pytest.raises(ValueError, match='not in'):
    with atomic_files.publish_folder(str(tmp_path / 'push')) as staged:
      staged.target = str(tmp_path / 'elsewhere' / '18')
  with pytest.raises(ValueError, match='on local paths only'):
    with atomic_files.publish_folder('gs://bucket/report'):
      pass
