"""The scheduled data job (components/data/span_inbox.py, prepare_data --append-from, and
serving/prepare-data-cronjob.yaml) on real ML-100K months: each inbox file is appended once, a
refused file is noted and does not stop the files after it, a call with nothing new changes
nothing, and an appended file is never appended again, even changed."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from components.data import ingestion
from components.data import movielens_formats as formats
from components.data import span_inbox
from components.data import spans
from pipeline import prepare_data
from tests.conftest import ML_100K_DIR, PROJECT_DIR
from tests.data.test_span_append import _snapshot, _timestamp, make_schedule_source
from tests.data.test_span_append import prepare_root


def _schedule(folder):
  """(source, layout root, march, corrupted march, april): the layout holds the spans up to
  February 1998."""
  source, march, corrupt = make_schedule_source(folder)
  with open(os.path.join(ML_100K_DIR, 'u.data'), encoding='latin-1') as f:
    rows = [line for i, line in enumerate(f.read().splitlines()) if i % 5 == 0
            and _timestamp(1998, 4) <= int(line.split('\t')[3]) < _timestamp(1998, 5)]
  april = os.path.join(folder, 'april.data')
  with open(april, 'w', encoding='latin-1') as f:
    f.write('\n'.join(rows) + '\n')
  return source, prepare_root(folder, source), march, corrupt, april


def _deliver(inbox, name, path):
  """Into the inbox as a writer should: under a dot-name, then renamed."""
  os.makedirs(inbox, exist_ok=True)
  shutil.copy(path, os.path.join(inbox, '.' + name))
  os.replace(os.path.join(inbox, '.' + name), os.path.join(inbox, name))


def _prepare_data(*args):
  return subprocess.run([sys.executable, '-m', 'pipeline.prepare_data', *args], cwd=PROJECT_DIR,
                        capture_output=True, text=True, timeout=300)


def _info(root):
  with open(os.path.join(root, ingestion.INFO_FILE), encoding='utf-8') as f:
    return json.load(f)


def test_a_refused_file_is_noted_and_the_files_after_it_are_appended_once(tmp_path):
  source, root, _, corrupt, april = _schedule(str(tmp_path))
  inbox = str(tmp_path / 'inbox')
  _deliver(inbox, '1998-03.data', corrupt)
  _deliver(inbox, '1998-04.data', april)
  with open(os.path.join(inbox, '.1998-05.data'), 'w', encoding='latin-1') as f:
    f.write('1\t1\t')  # a file still being written: left alone

  result = _prepare_data('--data-root', root, '--append-from', inbox, '--data-dir', source)
  assert result.returncode == 2
  assert (f"error: {inbox}/1998-03.data:11: expected 4 fields separated by '\\t', found 5 "
          f"(refused; not retried until the file changes or is renamed)") in result.stderr
  assert 'Traceback' not in result.stderr
  assert f'{inbox}/1998-04.data: ' in result.stdout and 'as span(s) 199804' in result.stdout
  info = _info(root)
  assert sorted(int(s) for s in info['spans'])[-2:] == [199802, 199804]
  notes = info[span_inbox.NOTES]
  assert set(notes) == {'1998-03.data', '1998-04.data'}
  assert notes['1998-03.data']['status'] == 'refused' and ':11:' in notes['1998-03.data']['error']
  assert notes['1998-04.data']['status'] == 'appended'
  assert notes['1998-04.data']['spans'] == [199804]
  window = spans.run_info(info, 199804, 0)['train_spans']
  assert 199803 not in window and window[-1] == 199802  # nothing of the refused file

  before = _snapshot(root)
  again = _prepare_data('--data-root', root, '--append-from', inbox, '--data-dir', source)
  assert again.returncode == 0, again.stderr
  assert again.stdout.strip() == f'{inbox}: nothing new (every file was handled before)'
  assert _snapshot(root) == before


def test_a_refused_file_is_retried_once_mended_and_an_appended_one_never(tmp_path):
  source, root, march, corrupt, april = _schedule(str(tmp_path))
  inbox = str(tmp_path / 'inbox')
  _deliver(inbox, '1998-03.data', corrupt)
  [refused] = span_inbox.append_inbox(root, inbox, source)
  assert refused.status == span_inbox.REFUSED
  assert span_inbox.append_inbox(root, inbox, source) == []  # noted: not retried as it is
  os.replace(os.path.join(inbox, '1998-03.data'), os.path.join(inbox, '1998-03-again.data'))
  [again] = span_inbox.append_inbox(root, inbox, source)  # renamed: tried again
  assert (again.name, again.status) == ('1998-03-again.data', span_inbox.REFUSED)
  os.remove(os.path.join(inbox, '1998-03-again.data'))
  _deliver(inbox, '1998-03.data', march)  # the supplier sends the file again, mended
  _deliver(inbox, '1998-04.data', april)
  outcomes = span_inbox.append_inbox(root, inbox, source)
  assert [(o.name, o.status, o.spans) for o in outcomes] == [
      ('1998-03.data', 'appended', [199803]), ('1998-04.data', 'appended', [199804])]
  assert span_inbox.append_inbox(root, inbox, source) == []

  before = _snapshot(root)
  with open(os.path.join(inbox, '1998-04.data'), 'a', encoding='latin-1') as f:
    f.write('1\t2\t3\t893800000\n')  # a rating added to a file already appended
  for _ in range(2):  # refused on every call, the layout untouched
    [changed] = span_inbox.append_inbox(root, inbox, source)
    assert changed.status == span_inbox.REFUSED
    assert changed.message == (
        f'error: {inbox}/1998-04.data: changed after it was appended as span(s) 199804; an '
        f'appended span is never rewritten: put new ratings in a new file')
    assert _snapshot(root) == before


def test_under_skip_each_file_keeps_its_own_list_of_dropped_rows(tmp_path):
  source, root, _, corrupt, april = _schedule(str(tmp_path))
  inbox = str(tmp_path / 'inbox')
  _deliver(inbox, '1998-03.data', corrupt)
  _deliver(inbox, '1998-04.data', april)
  outcomes = span_inbox.append_inbox(root, inbox, source, formats.SKIP)
  assert [o.status for o in outcomes] == ['appended', 'appended']
  assert '2 malformed rows skipped' in outcomes[0].message
  with open(os.path.join(root, 'rejected_rows-1998-03.data.csv'), encoding='utf-8') as f:
    rejected = f.read().splitlines()
  assert len(rejected) == 3 and rejected[1].startswith('1998-03.data,11,')
  assert rejected[2].startswith('1998-03.data,21,')
  with open(os.path.join(root, 'rejected_rows-1998-04.data.csv'), encoding='utf-8') as f:
    assert len(f.read().splitlines()) == 1  # the header: April had none
  assert _info(root)[span_inbox.NOTES]['1998-03.data']['rejected_rows']['total'] == 2


def test_the_cronjob_runs_the_inbox_job_with_flags_prepare_data_takes(tmp_path):
  yaml = pytest.importorskip('yaml')
  with open(os.path.join(PROJECT_DIR, 'serving', 'prepare-data-cronjob.yaml'),
            encoding='utf-8') as f:
    job = yaml.safe_load(f)
  assert job['kind'] == 'CronJob' and job['spec']['concurrencyPolicy'] == 'Forbid'
  assert job['spec']['jobTemplate']['spec']['backoffLimit'] == 0  # a retry would hide a refusal
  pod = job['spec']['jobTemplate']['spec']['template']['spec']
  [container] = pod['containers']
  assert container['command'][:3] == ['python', '-m', 'pipeline.prepare_data']
  args = prepare_data.build_parser().parse_args(container['command'][3:])
  mount = container['volumeMounts'][0]['mountPath']
  assert {pod['volumes'][0]['name']} == {container['volumeMounts'][0]['name']}
  for path in (args.data_root, args.append_from, args.data_dir):
    assert path.startswith(mount + '/')

  # The job's own command, with the mount moved here: the first night appends, the next has
  # nothing new.
  source, root, march, _, _ = _schedule(str(tmp_path))
  data = str(tmp_path / 'mount')
  for path, there in ((root, args.data_root), (source, args.data_dir)):
    shutil.copytree(path, data + there[len(mount):])
  _deliver(data + args.append_from[len(mount):], '1998-03.data', march)
  command = [a.replace(mount + '/', data + '/') for a in container['command'][3:]]
  first, second = _prepare_data(*command), _prepare_data(*command)
  assert first.returncode == 0 and 'as span(s) 199803' in first.stdout, first.stderr
  assert second.returncode == 0 and 'nothing new' in second.stdout, second.stderr
