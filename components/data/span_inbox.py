"""A folder of new ratings files appended to a span layout, each exactly once: the data job a
scheduler can run as often as it likes. `python -m pipeline.prepare_data --data-root ROOT
--append-from INBOX --data-dir SOURCE`.

Each file of INBOX (in name order; names starting with '.' are left alone, so a writer can
write under a dot-name and rename into place) is appended as `span_append` appends one file.
`dataset.json` notes every file handled, by name and SHA-256, in the same write that publishes
its spans: a later call skips it, so a call with nothing new changes nothing. A file refused
(a bad row under `--on-bad-rows fail`, ratings not after the last span, ...) is noted as refused
with the reason and is not retried until its content or name changes (renaming retries a file
refused for a reason outside it, such as a movie missing from SOURCE); the files after it are
still appended, so one bad delivery does not stop the schedule. A file that changes after it
was appended is refused on every call: an appended span is never rewritten.
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional

from components import atomic_files
from components.data import ingestion
from components.data import movielens_formats as formats
from components.data import span_append

NOTES = 'inbox'  # the dataset.json key: file name -> what happened to it
APPENDED, REFUSED = 'appended', 'refused'
REJECTED_FILE = 'rejected_rows-{}.csv'  # under skip, per inbox file (one call may append several)


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What one call did with one inbox file."""
  name: str
  status: str  # APPENDED or REFUSED
  message: str
  spans: Optional[List[int]] = None


def inbox_files(inbox: str) -> List[str]:
  """The names of the files waiting in `inbox`, in the order they are appended."""
  if not os.path.isdir(inbox):
    raise formats.IngestionError(inbox, 'the inbox is not a folder')
  return sorted(name for name in os.listdir(inbox)
                if not name.startswith('.') and os.path.isfile(os.path.join(inbox, name)))


def _note_refusal(root: str, name: str, digest: str, error: formats.IngestionError) -> None:
  info = span_append.load_layout(root)
  info.setdefault(NOTES, {})[name] = {'status': REFUSED, 'sha256': digest, 'error': str(error)}
  atomic_files.write(os.path.join(root, ingestion.INFO_FILE),
                     json.dumps(info, indent=2, sort_keys=True))


def append_inbox(root: str, inbox: str, data_dir: str,
                 on_bad_rows: str = formats.FAIL) -> List[Outcome]:
  """Appends every file of `inbox` not handled before to the span layout at `root`; returns
  what happened to each file this call looked at (none: nothing new)."""
  outcomes = []
  for name in inbox_files(inbox):
    path = os.path.join(inbox, name)
    digest = ingestion.file_sha256(path)
    note: Dict = span_append.load_layout(root).get(NOTES, {}).get(name, {})
    if note.get('sha256') == digest:
      continue  # handled before, appended or refused
    if note.get('status') == APPENDED:
      outcomes.append(Outcome(name, REFUSED, (
          f'error: {path}: changed after it was appended as span(s) '
          f'{", ".join(map(str, note["spans"]))}; an appended span is never rewritten: put new '
          f'ratings in a new file')))
      continue

    rejected_file = REJECTED_FILE.format(name)  # under skip: this file's dropped rows

    def record(info, name=name, digest=digest, rejected_file=rejected_file):
      appended = info['appended']
      info.setdefault(NOTES, {})[name] = {
          'status': APPENDED, 'sha256': digest, 'spans': appended['spans'],
          'ratings': appended['ratings'], 'rejected_rows': appended['rejected_rows'],
          'rejected_file': rejected_file if on_bad_rows == formats.SKIP else None}

    try:
      info = span_append.append_spans(root, path, data_dir, on_bad_rows, record=record,
                                      rejected_file=rejected_file)
    except formats.IngestionError as e:
      _note_refusal(root, name, digest, e)
      outcomes.append(Outcome(name, REFUSED, f'error: {e} (refused; not retried until the '
                                             f'file changes or is renamed)'))
      continue
    appended = info['appended']
    message = (f'{path}: {appended["ratings"]} ratings appended as span(s) '
               f'{", ".join(map(str, appended["spans"]))} -> {root}')
    rejected = ingestion.describe_rejected_rows(
        dict(appended, rejected_file=os.path.join(root, rejected_file)))
    outcomes.append(Outcome(name, APPENDED, message + (f'. {rejected}' if rejected else ''),
                            appended['spans']))
  return outcomes
