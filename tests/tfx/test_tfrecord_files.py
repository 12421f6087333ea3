"""components/tfx/tfrecord_files.py: Beam's file-sink protocol with TensorFlow's C++ writer."""

import os

import apache_beam as beam
import tensorflow as tf

from components.tfx import tfrecord_files


def _write(tmp_path, batches):
  prefix, staging = str(tmp_path / 'Split-train' / 'data'), str(tmp_path / '.staging-train')
  with beam.Pipeline() as pipeline:
    _ = (pipeline | beam.Create(batches, reshuffle=False)
         | tfrecord_files.WriteTFRecordFiles(prefix, staging))
  names = sorted(os.listdir(tmp_path / 'Split-train'))
  records = [r.numpy() for r in tf.data.TFRecordDataset(
      [str(tmp_path / 'Split-train' / name) for name in names], compression_type='GZIP')]
  return names, records


def test_every_record_once_in_files_with_beam_s_shard_names(tmp_path):
  batches = [[f'{b}-{i}'.encode() for i in range(1000)] for b in range(5)]
  names, records = _write(tmp_path, batches)
  assert names == [f'data-{i:05d}-of-{len(names):05d}.gz' for i in range(len(names))]
  assert sorted(records) == sorted(record for batch in batches for record in batch)
  assert not os.path.exists(tmp_path / '.staging-train')  # nothing left behind


def test_the_same_bytes_as_beam_s_own_writer(tmp_path):
  batches = [[bytes(range(i % 256)) * 3 for i in range(500)]]
  _, ours = _write(tmp_path / 'ours', batches)
  with beam.Pipeline() as pipeline:
    _ = (pipeline | beam.Create(batches[0])
         | beam.io.WriteToTFRecord(str(tmp_path / 'beam' / 'data'), file_name_suffix='.gz'))
  [beam_file] = os.listdir(tmp_path / 'beam')
  theirs = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / 'beam' / beam_file),
                                                       compression_type='GZIP')]
  assert ours == theirs


def test_a_file_a_failed_bundle_left_in_staging_is_never_published(tmp_path):
  staging = tmp_path / '.staging-train'
  staging.mkdir()
  with tf.io.TFRecordWriter(str(staging / 'left-by-a-failed-bundle.gz'),
                            tf.io.TFRecordOptions(compression_type='GZIP')) as writer:
    writer.write(b'half of a retried bundle')
  _, records = _write(tmp_path, [[b'a', b'b']])
  assert sorted(records) == [b'a', b'b']
  assert not staging.exists()


def test_no_records_is_one_empty_file(tmp_path):
  names, records = _write(tmp_path, [])
  assert names == ['data-00000-of-00001.gz'] and records == []
