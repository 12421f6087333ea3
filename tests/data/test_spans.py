"""Time spans (components/data/spans.py) and their prepared layout (ingestion with --span): a
run's eval span is later than all of its training ratings, on real ML-100K by month and by
week."""

import csv
import datetime
import os

import numpy as np
import pytest

from components.data import ingestion
from components.data import spans
from tests.conftest import ML_100K_DIR


def _timestamp(text):
  return int(datetime.datetime.fromisoformat(text).replace(
      tzinfo=datetime.timezone.utc).timestamp())


def test_span_numbers_are_utc_months_and_iso_weeks():
  times = np.array([_timestamp(t) for t in (
      '1997-09-20T00:00:00', '1997-09-30T23:59:59', '1997-10-01T00:00:00',
      '1997-12-29T12:00:00', '1998-01-04T12:00:00', '1998-01-05T00:00:00')])
  assert spans.span_numbers(times, spans.MONTH).tolist() == [
      199709, 199709, 199710, 199712, 199801, 199801]
  # 1997-12-29 is in ISO week 1 of 1998; 1998-01-05 starts week 2.
  assert spans.span_numbers(times, spans.WEEK).tolist() == [
      199738, 199740, 199740, 199801, 199801, 199802]
  with pytest.raises(ValueError, match="unknown span period 'day'"):
    spans.span_numbers(times, 'day')


def test_the_training_window_is_the_spans_before_the_eval_span():
  numbers = [199709, 199710, 199711, 199712]
  assert spans.training_window(numbers, 199712) == [199709, 199710, 199711]
  assert spans.training_window(numbers, 199712, window=2) == [199710, 199711]
  assert spans.training_window(numbers, 199710, window=5) == [199709]
  with pytest.raises(ValueError, match='span 199709 is the first span'):
    spans.training_window(numbers, 199709)
  with pytest.raises(ValueError, match=r'span 199801 has no ratings; the spans are '
                                       r'199709..199712 \(4\)'):
    spans.training_window(numbers, 199801)


def _read(path):
  with open(path, encoding='utf-8', newline='') as f:
    return list(csv.DictReader(f))


@pytest.mark.parametrize('period, eval_span, window', [
    (spans.MONTH, None, 0), (spans.MONTH, 199711, 1), (spans.WEEK, 199810, 4)])
def test_real_ml100k_spans_train_on_the_past_and_evaluate_on_the_future(
    tmp_path, period, eval_span, window):
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  prepared = ingestion.prepare_examples(ingestion.IngestionOptions(
      data_dir=ML_100K_DIR, span=period, eval_span=eval_span, window=window), str(tmp_path))
  info = prepared.info
  every = sorted(int(s) for s in info['spans'])
  assert sum(s['ratings'] for s in info['spans'].values()) == 100_000  # every rating, once
  if period == spans.MONTH:
    assert every == [199709, 199710, 199711, 199712, 199801, 199802, 199803, 199804]
  assert prepared.eval_span == info['eval_span'] == (eval_span or every[-1])
  assert info['train_spans'] == spans.training_window(every, info['eval_span'], window)
  train = _read(spans.split_file(prepared.input_base, prepared.eval_span, 'train',
                                 ingestion.EXAMPLES_FILE))
  evaluation = _read(spans.split_file(prepared.input_base, prepared.eval_span, 'eval',
                                      ingestion.EXAMPLES_FILE))
  assert len(train) == info['num_ratings']['train'] and len(evaluation) == info['num_ratings'][
      'eval']
  train_max = max(int(r['timestamp']) for r in train)
  eval_min = min(int(r['timestamp']) for r in evaluation)
  assert train_max == info['train_max_timestamp'] < eval_min == info['eval_min_timestamp']
  assert set(spans.span_numbers(np.array([int(r['timestamp']) for r in train]),
                                period).tolist()) == set(info['train_spans'])


def test_a_later_run_reuses_the_spans_and_adds_its_window(tmp_path):
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  options = ingestion.IngestionOptions(data_dir=ML_100K_DIR, span=spans.MONTH, eval_span=199712)
  first = ingestion.prepare_examples(options, str(tmp_path))
  stamp = os.stat(spans.split_file(first.input_base, 199710, 'eval', 'ratings.csv')).st_mtime_ns
  later = ingestion.prepare_examples(
      ingestion.IngestionOptions(data_dir=ML_100K_DIR, span=spans.MONTH, eval_span=199801),
      str(tmp_path))
  assert later.input_base == first.input_base  # one folder: CsvExampleGen's {SPAN} finds both
  assert os.stat(spans.split_file(first.input_base, 199710, 'eval',
                                  'ratings.csv')).st_mtime_ns == stamp  # not rewritten
  assert os.path.isdir(os.path.dirname(spans.split_file(first.input_base, 199712, 'train', 'x')))
  assert later.info['num_ratings']['train'] == first.info['num_ratings']['train'] + \
      first.info['num_ratings']['eval']
  assert not [n for n in os.listdir(first.input_base) if n.startswith('.')]
