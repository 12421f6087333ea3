"""Ratings cut into time spans, for retraining on a schedule and judging on what came after.

A span is a calendar month (span number YYYYMM) or an ISO week (YYYYWW), in UTC, of the ratings'
timestamps: numbers that stay the same when later spans arrive, and that TFX reads as spans.
The prepared data holds every span's ratings as `span-N/eval/` and, for the span a run is for,
its training window as `span-N/train/`: the spans before N, all of them or the last `window`.
CsvExampleGen reads them with `{SPAN}` in its input patterns (the latest span, or the one a
RangeConfig names), so every eval rating of a run is later than every training rating, locally
and on Kubeflow alike (TFX 1.16's Kubeflow V2 compiler has no multi-span resolver, so the window
is written by the data job rather than resolved in the DAG).
"""

import datetime
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

MONTH, WEEK = 'month', 'week'
PERIODS = (MONTH, WEEK)
FOLDER = 'span-{}'  # CsvExampleGen's patterns put {SPAN} in its place


def span_numbers(timestamps: np.ndarray, period: str) -> np.ndarray:
  """Each rating's span: YYYYMM of its UTC month, or YYYYWW of its ISO week (ISO year)."""
  if period not in PERIODS:
    raise ValueError(f'unknown span period {period!r}; expected one of {", ".join(PERIODS)}')
  days = np.asarray(timestamps, np.int64).astype('datetime64[s]').astype('datetime64[D]')
  if period == MONTH:
    months = days.astype('datetime64[M]').astype(np.int64)  # months since 1970-01
    return (1970 + months // 12) * 100 + months % 12 + 1
  unique, inverse = np.unique(days, return_inverse=True)
  weeks = np.array([(lambda iso: iso[0] * 100 + iso[1])(
      datetime.date.fromisoformat(str(day)).isocalendar()) for day in unique], np.int64)
  return weeks[inverse] if len(unique) else np.zeros(0, np.int64)


def training_window(spans: Sequence[int], eval_span: int, window: int = 0) -> List[int]:
  """The spans a run for `eval_span` trains on: those before it, the last `window` (0: all)."""
  if window < 0:
    raise ValueError(f'--window must be 0 (all earlier spans) or positive, got {window}')
  if eval_span not in spans:
    raise ValueError(f'span {eval_span} has no ratings; the spans are {describe(spans)}')
  earlier = sorted(s for s in spans if s < eval_span)
  if not earlier:
    raise ValueError(f'span {eval_span} is the first span: there is nothing before it to train '
                     f'on (the spans are {describe(spans)})')
  return earlier[-window:] if window else earlier


def describe(spans: Sequence[int]) -> str:
  spans = sorted(spans)
  return f'{spans[0]}..{spans[-1]} ({len(spans)})' if spans else 'none'


def summary(timestamps: np.ndarray, numbers: np.ndarray) -> Dict[str, Dict[str, int]]:
  """{span: {'ratings', 'min_timestamp', 'max_timestamp'}} (spans as strings: JSON keys)."""
  result = {}
  for span in np.unique(numbers).tolist():
    times = timestamps[numbers == span]
    result[str(span)] = {'ratings': int(len(times)), 'min_timestamp': int(times.min()),
                         'max_timestamp': int(times.max())}
  return result


def run_info(spans_info: Dict, eval_span: Optional[int], window: int) -> Dict:
  """What a run for `eval_span` (None: the latest) trains and is evaluated on."""
  by_span = spans_info['spans']
  numbers = sorted(int(s) for s in by_span)
  eval_span = numbers[-1] if eval_span is None else eval_span
  train = training_window(numbers, eval_span, window)
  return {'eval_span': eval_span, 'train_spans': train,
          'num_ratings': {'train': sum(by_span[str(s)]['ratings'] for s in train),
                          'eval': by_span[str(eval_span)]['ratings']},
          'train_max_timestamp': max(by_span[str(s)]['max_timestamp'] for s in train),
          'eval_min_timestamp': by_span[str(eval_span)]['min_timestamp']}


def split_file(root: str, span: int, split: str, name: str) -> str:
  return os.path.join(root, FOLDER.format(span), split, name)


def pattern(split: str) -> str:
  """CsvExampleGen's input pattern of `split` under the prepared data."""
  return f'{FOLDER.format("{SPAN}")}/{split}/*.csv'
