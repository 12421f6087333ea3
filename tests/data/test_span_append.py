"""Appending new ratings to a span layout (components/data/span_append.py, prepare_data
--append-span) on real ML-100K months: a corrupted span is refused whole under fail and leaves
the layout as it was, skip drops and lists its bad rows, a span is never rewritten."""

import datetime
import json
import os
import shutil
import subprocess
import sys

import pytest

from components.data import ingestion
from components.data import span_append
from components.data import spans
from tests.conftest import ML_100K_DIR, PROJECT_DIR


def _timestamp(year, month):
  return int(datetime.datetime(year, month, 1, tzinfo=datetime.timezone.utc).timestamp())


def make_schedule_source(folder, every=5):
  """A copy of ML-100K's users and movies with every `every`-th rating before March 1998
  (u.data), and March 1998's as a new span file (march.data), plus a corrupted copy of it
  (march-corrupt.data: line 11 has an extra field, line 21 a rating of 9)."""
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  source = os.path.join(folder, 'src')
  os.makedirs(source)
  for name in ('u.item', 'u.user'):
    shutil.copy(os.path.join(ML_100K_DIR, name), source)
  with open(os.path.join(ML_100K_DIR, 'u.data'), encoding='latin-1') as f:
    lines = [line for i, line in enumerate(f.read().splitlines()) if i % every == 0]
  when = lambda line: int(line.split('\t')[3])
  march = [row for row in lines if _timestamp(1998, 3) <= when(row) < _timestamp(1998, 4)]
  bad = list(march)
  bad[10] = bad[10].replace('\t', '\t\t', 1)
  fields = bad[20].split('\t')
  bad[20] = '\t'.join(fields[:2] + ['9'] + fields[3:])
  for name, rows in (('src/u.data', [row for row in lines if when(row) < _timestamp(1998, 3)]),
                     ('march.data', march), ('march-corrupt.data', bad)):
    with open(os.path.join(folder, name), 'w', encoding='latin-1') as f:
      f.write('\n'.join(rows) + '\n')
  return source, os.path.join(folder, 'march.data'), os.path.join(folder, 'march-corrupt.data')


def prepare_root(folder, source):
  root = os.path.join(folder, 'root')
  result = subprocess.run([sys.executable, '-m', 'pipeline.prepare_data', '--data-root', root,
                           '--data-dir', source, '--span', 'month'], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  return root


def _snapshot(root):
  return sorted((os.path.relpath(os.path.join(d, n), root),
                 os.path.getsize(os.path.join(d, n)))
                for d, _, names in os.walk(root) for n in names)


def test_a_corrupted_span_is_refused_whole_and_a_good_one_appended(tmp_path):
  source, march, corrupt = make_schedule_source(str(tmp_path))
  root = prepare_root(str(tmp_path), source)
  before = _snapshot(root)
  result = subprocess.run([sys.executable, '-m', 'pipeline.prepare_data', '--data-root', root,
                           '--data-dir', source, '--append-span', corrupt], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  assert f"error: {corrupt}:11: expected 4 fields separated by '\\t', found 5" in result.stderr
  assert 'Traceback' not in result.stderr
  assert _snapshot(root) == before  # nothing of the bad span

  info = span_append.append_spans(root, march, source)
  assert info['appended']['spans'] == [199803]
  assert sorted(int(s) for s in info['spans'])[-1] == 199803
  window = spans.split_file(root, 199803, ingestion.TRAIN, ingestion.EXAMPLES_FILE)
  with open(window, encoding='utf-8') as f:
    rows = f.read().splitlines()[1:]
  assert len(rows) == sum(v['ratings'] for k, v in info['spans'].items() if int(k) < 199803)
  with open(os.path.join(root, ingestion.INFO_FILE), encoding='utf-8') as f:
    assert json.load(f)['spans']['199803']['ratings'] == info['appended']['ratings']
  assert not [n for n in os.listdir(root) if n.startswith('.')]  # nothing half-written

  with pytest.raises(ValueError, match=r'march.data:1: rated at .*in span 199803: not after '
                                       r'the last span 199803 \(spans are appended, never '
                                       r'rewritten\)'):
    span_append.append_spans(root, march, source)


def test_skip_drops_and_lists_the_bad_rows_of_a_span(tmp_path):
  source, march, corrupt = make_schedule_source(str(tmp_path))
  root = prepare_root(str(tmp_path), source)
  info = span_append.append_spans(root, corrupt, source, on_bad_rows='skip')
  with open(march, encoding='latin-1') as f:
    total = len(f.read().splitlines())
  assert info['appended']['ratings'] == total - 2
  assert info['appended']['rejected_rows']['by_reason'] == {'rating off the scale': 1,
                                                            'wrong field count': 1}
  with open(os.path.join(root, ingestion.REJECTED_FILE), encoding='utf-8') as f:
    listed = f.read().splitlines()
  assert [line.split(',')[1] for line in listed[1:]] == ['11', '21']
