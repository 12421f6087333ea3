"""New ratings appended to a prepared span layout as its next span(s): how a schedule receives
data. `python -m pipeline.prepare_data --data-root ROOT --append-span FILE --data-dir SOURCE`.

The file (in the dataset's ratings format: u.data, ratings.dat or ratings.csv lines) is
validated as ingestion validates a dataset: a malformed row, an unknown user or movie, a rating
off the scale, a (user, movie) pair rated before, or a rating no later than the layout's last
span stops the append naming the file and line (`on_bad_rows='fail'`), or is dropped and listed
in `rejected_rows.csv` ('skip'). Users and movies come from SOURCE, the MovieLens folder the new
ratings belong to. A refused file changes nothing, and the layout never shows a half-appended
span: each new span's folder is published whole (its eval split and, for the newest, its
training window), and `dataset.json`, which lists the spans, is rewritten last. A bad span so
never reaches a run, nor any later training window.
"""

import json
import os
from typing import Callable, Dict, Optional

import numpy as np

from components import atomic_files
from components.data import features
from components.data import ingestion
from components.data import movielens_formats as formats
from components.data import spans


def load_layout(root: str) -> Dict:
  """The layout's dataset.json; an IngestionError unless it is a span layout."""
  path = os.path.join(root, ingestion.INFO_FILE)
  if not os.path.isfile(path):
    raise formats.IngestionError(path, 'not a prepared data root (no dataset.json): prepare it '
                                 'first with --span month|week')
  with open(path, encoding='utf-8') as f:
    info = json.load(f)
  if not info.get('span_period'):
    raise formats.IngestionError(path, 'the data root is not in spans (prepared without --span)')
  return info


def _rated_pairs(root: str, info: Dict) -> Dict[tuple, int]:
  """(user id, movie id) -> the span it was rated in, over the layout's spans."""
  pairs = {}
  for span in sorted(int(s) for s in info['spans']):
    path = spans.split_file(root, span, ingestion.EVAL, ingestion.EXAMPLES_FILE)
    with open(path, encoding='utf-8') as f:
      header = f.readline().rstrip('\n').split(',')
      user, movie = header.index(features.USER_ID), header.index(features.MOVIE_ID)
      for line in f:  # the ids are integers ahead of any quoted text (features.RAW_FEATURE_TYPES)
        fields = line.split(',', max(user, movie) + 1)
        pairs[(int(fields[user]), int(fields[movie]))] = span
  return pairs


def _date(timestamp: int) -> str:
  return str(np.datetime64(int(timestamp), 's')) + 'Z'


def append_spans(root: str, ratings_path: str, data_dir: str,
                 on_bad_rows: str = formats.FAIL,
                 record: Optional[Callable[[Dict], None]] = None,
                 rejected_file: str = ingestion.REJECTED_FILE) -> Dict:
  """Appends `ratings_path`'s ratings to the span layout at `root`; returns the layout's new
  dataset.json, with 'appended': the new spans, their ratings and the rows rejected (under
  skip, listed in `rejected_file` under `root`). `record` may add to that dataset.json before
  it is written (span_inbox notes which file it was), so the spans and the note of their file
  appear together."""
  info = load_layout(root)
  dataset, period = info['dataset'], info['span_period']
  bad = formats.BadRows(on_bad_rows)
  movies, users = formats.read_movies_and_users(formats.resolve_data_dir(data_dir), dataset, bad)
  ratings = formats.read_ratings_file(ratings_path, dataset, movies, users, bad)
  numbers = spans.span_numbers(ratings.timestamp, period)
  last = max(int(s) for s in info['spans'])
  earlier = _rated_pairs(root, info)
  keep = np.ones(len(ratings), bool)
  encoding = formats.rating_encoding(formats.ratings_layout(dataset)[1])
  texts = (formats.texts_of_lines(ratings_path, encoding, set(ratings.line.tolist()))
           if bad.policy == formats.SKIP else {})
  for row in range(len(ratings)):
    line, span = int(ratings.line[row]), int(numbers[row])
    pair = (int(ratings.user_id[row]), int(ratings.movie_id[row]))
    if span <= last:
      error = formats.IngestionError(
          ratings_path, f'rated at {_date(ratings.timestamp[row])}, in span {span}: not after '
          f'the last span {last} (spans are appended, never rewritten)', line,
          formats.NOT_A_NEW_SPAN)
    elif pair in earlier:
      error = formats.IngestionError(
          ratings_path, f'duplicate rating of movie {pair[1]} by user {pair[0]} (rated in span '
          f'{earlier[pair]})', line, formats.DUPLICATE)
    else:
      continue
    keep[row] = False
    bad.reject(error, texts.get(line, ''))
  ratings, numbers = ratings.take(keep), numbers[keep]
  if not len(ratings):
    raise formats.IngestionError(ratings_path, 'no ratings left to append')

  data = formats.MovieLensData(dataset, data_dir, formats.RATING_SCALES[dataset], ratings,
                               movies, users)
  new_spans = np.unique(numbers).tolist()
  info['spans'].update(spans.summary(ratings.timestamp, numbers))
  # Every new span's folder whole, with its training window: any of them can be a run's, and
  # CsvExampleGen's latest train and eval spans stay the same span.
  for span in new_spans:
    window = spans.run_info(info, span, info.get('window', 0))['train_spans']
    with atomic_files.publish_folder(os.path.join(root, spans.FOLDER.format(span))) as staged:
      ingestion.write_examples(
          os.path.join(staged.path, ingestion.EVAL, ingestion.EXAMPLES_FILE), data, ratings,
          numbers == span)
      ingestion.concatenate_spans(root, window, os.path.join(staged.path, ingestion.TRAIN,
                                                             ingestion.EXAMPLES_FILE))
  if bad.policy == formats.SKIP:
    ingestion.write_csv(os.path.join(root, rejected_file), ingestion.REJECTED_COLUMNS,
                        ([os.path.basename(r.path), r.line, r.reason, r.problem, r.text]
                         for r in bad.rejected))
  # The source's movies: new movies of the appended ratings are served too.
  ingestion.write_catalogue(os.path.join(root, ingestion.CATALOGUE_FILE), movies)
  info['num_movies'] = len(movies)
  info['appended'] = {'file': os.path.abspath(ratings_path), 'spans': new_spans,
                      'ratings': int(len(ratings)),
                      'rejected_rows': ingestion.rejected_summary(bad)}
  if record:
    record(info)
  atomic_files.write(os.path.join(root, ingestion.INFO_FILE),
                     json.dumps(info, indent=2, sort_keys=True))
  return info
