"""TFMA metrics of the lists users get: top-K over the whole catalogue, per eval user.

The served product is `recommend`'s list, so the Evaluator judges it, next to the rating error.
Each model's `transformed_features` signature (TFMA's preprocessing function, called per model,
baseline included) gives every eval rating its user's top `MAX_K` recommendations among the
movies the user did not rate in training, as `recommend` answers them, and the most-popular
list for the same user (components/export/signatures.py), each as one string of
space-separated movie IDs, kept whole until `extract_output` (Beam encodes the accumulators).
`TopKRanking` groups a slice's eval ratings by user (`user_key`): relevant = the user's eval
movies, and per user it scores the model's list and most-popular's with Microsoft Recommenders' definitions (binary relevance, averaged
over users):

  P@k = hits / k, R@k = hits / |relevant|, NDCG@k = DCG / ideal DCG with gains
  1 / log2(rank + 1), MAP@k = sum of the precision at each hit / |relevant| (Microsoft
  Recommenders' `map_at_k`), coverage = distinct movies in the top k of all users / movies
  with training ratings.

`list_metrics` is also what bench.quality's top-10 protocols score with, so the pipeline's
figures and the benchmark's are one computation.

Keys (overall and per slice): `ranking/precision@10`, `recall@10`, `ndcg@10`, `map@10`,
`coverage`, `users`, the same under `most_popular/`, `ranking/ndcg@10_over_most_popular` (the
model's NDCG@10 minus most-popular's, which the blessing bounds below by 0), and the curves
`ranking/precision` and `ranking/recall` with a top_k sub key for k = 1..MAX_K.
"""

import collections
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.metrics import metric_types

MAX_K = 50   # the longest list asked for: the precision / recall curves run 1..MAX_K
CUTOFF = 10  # the headline figures
RANKING, MOST_POPULAR = 'ranking', 'most_popular'
# The `transformed_features` outputs the metric reads (components/export/signatures.py writes them).
RECOMMENDED, POPULAR, TRAINED_MOVIES = ('recommended_movie_ids', 'most_popular_movie_ids',
                                        'trained_movies')
SUMMARY_FIELDS = (f'precision@{CUTOFF}', f'recall@{CUTOFF}', f'ndcg@{CUTOFF}', f'map@{CUTOFF}',
                  'coverage', 'users')
NDCG_OVER_POPULAR = f'{RANKING}/ndcg@{CUTOFF}_over_{MOST_POPULAR}'
PRECISION_CURVE, RECALL_CURVE = f'{RANKING}/precision', f'{RANKING}/recall'


def key_name(prefix: str, field: str) -> str:
  return f'{prefix}/{field}'


def list_metrics(lists: Sequence[Sequence[str]], relevant: Sequence[set], k: int,
                 trained_movies: int) -> Dict[str, float]:
  """P@k, R@k, NDCG@k, MAP@k and coverage of each user's list against their relevant set."""
  discount = 1.0 / np.log2(np.arange(2, k + 2))
  totals = np.zeros(4)
  shown = set()
  for movies, truth in zip(lists, relevant):
    top = list(movies[:k])
    shown.update(top)
    hits = np.array([movie in truth for movie in top] + [False] * (k - len(top)), dtype=float)
    found = hits.sum()
    totals += (found / k, found / len(truth),
               (hits * discount).sum() / discount[:min(len(truth), k)].sum(),
               (np.cumsum(hits) / np.arange(1, k + 1) * hits).sum() / len(truth))
  users = len(relevant)
  means = totals / users if users else np.full(4, float('nan'))
  return {f'precision@{k}': float(means[0]), f'recall@{k}': float(means[1]),
          f'ndcg@{k}': float(means[2]), f'map@{k}': float(means[3]),
          'coverage': len(shown) / trained_movies if trained_movies else float('nan'),
          'users': users}


def curves(lists: Sequence[Sequence[str]], relevant: Sequence[set], max_k: int):
  """(mean precision [max_k], mean recall [max_k]) at k = 1..max_k over users."""
  precision, recall = np.zeros(max_k), np.zeros(max_k)
  for movies, truth in zip(lists, relevant):
    hits = np.cumsum([movie in truth for movie in list(movies[:max_k])]
                     + [False] * (max_k - len(movies[:max_k])))
    precision += hits / np.arange(1, max_k + 1)
    recall += hits / len(truth)
  users = max(len(relevant), 1)
  return precision / users, recall / users


def _first(value) -> bytes:
  """The one value of a rating's feature, as bytes (IDs are compared as TFMA gives them)."""
  value = np.asarray(value).ravel()[0]
  return value if isinstance(value, bytes) else str(value).encode('utf-8')


class _Accumulator:
  __slots__ = ('relevant', 'recommended', 'popular', 'trained_movies')

  def __init__(self):
    # By user ID (bytes): the eval movie IDs, and each list as one space-separated string.
    self.relevant: Dict[bytes, set] = collections.defaultdict(set)
    self.recommended: Dict[bytes, bytes] = {}
    self.popular: Dict[bytes, bytes] = {}
    self.trained_movies = 0


class _TopKCombiner(beam.CombineFn):
  """Per slice: each user's relevant movies and (once) their two lists."""

  def __init__(self, keys: Dict[str, metric_types.MetricKey],
               curve_keys: Dict[str, List[metric_types.MetricKey]], model_name: str,
               user_key: str, movie_key: str):
    self._keys, self._curve_keys, self._model_name = keys, curve_keys, model_name
    self._user_key, self._movie_key = user_key, movie_key

  def create_accumulator(self):
    return _Accumulator()

  def _transformed(self, element):
    transformed = element[constants.TRANSFORMED_FEATURES_KEY]
    if self._model_name in transformed and isinstance(transformed[self._model_name], dict):
      transformed = transformed[self._model_name]  # several models (a baseline): one each
    return transformed

  def add_input(self, accumulator, element):
    features = element[constants.FEATURES_KEY]
    user = _first(features[self._user_key])
    accumulator.relevant[user].add(_first(features[self._movie_key]))
    if user not in accumulator.recommended:
      transformed = self._transformed(element)
      for name, lists in ((RECOMMENDED, accumulator.recommended),
                          (POPULAR, accumulator.popular)):
        lists[user] = _first(transformed[name])  # split in extract_output
      accumulator.trained_movies = int(np.asarray(transformed[TRAINED_MOVIES]).ravel()[0])
    return accumulator

  def merge_accumulators(self, accumulators):
    result = _Accumulator()
    for accumulator in accumulators:
      for user, movies in accumulator.relevant.items():
        result.relevant[user] |= movies
      result.recommended.update(accumulator.recommended)
      result.popular.update(accumulator.popular)
      result.trained_movies = max(result.trained_movies, accumulator.trained_movies)
    return result

  def extract_output(self, accumulator):
    users = sorted(accumulator.relevant)
    relevant = [accumulator.relevant[u] for u in users]
    result = {}
    recommended = [accumulator.recommended[u].split() for u in users]
    for prefix, ordered in ((RANKING, recommended),
                            (MOST_POPULAR, [accumulator.popular[u].split() for u in users])):
      for field, value in list_metrics(ordered, relevant, CUTOFF,
                                       accumulator.trained_movies).items():
        result[self._keys[key_name(prefix, field)]] = value
    result[self._keys[NDCG_OVER_POPULAR]] = (
        result[self._keys[key_name(RANKING, f'ndcg@{CUTOFF}')]]
        - result[self._keys[key_name(MOST_POPULAR, f'ndcg@{CUTOFF}')]])
    if users:
      precision, recall = curves(recommended, relevant, MAX_K)
      for name, values in ((PRECISION_CURVE, precision), (RECALL_CURVE, recall)):
        for key, value in zip(self._curve_keys[name], values):
          result[key] = float(value)
    return result


def _top_k(user_key: str, movie_key: str, name=None, eval_config=None, model_names=None,
           output_names=None, sub_keys=None, example_weighted: bool = False,
           query_key: str = ''):
  # The keys are fixed, per model, and unweighted: example_weighted None, as TFMA keys the
  # MetricsSpec thresholds by name (components/evaluation/eval_config.py) that bless on them.
  del name, eval_config, output_names, sub_keys, query_key, example_weighted
  names = ([key_name(p, field) for p in (RANKING, MOST_POPULAR) for field in SUMMARY_FIELDS]
           + [NDCG_OVER_POPULAR])
  preprocessor = metric_types.StandardMetricInputsPreprocessor(
      include_filter={constants.FEATURES_KEY: {user_key: {}, movie_key: {}},
                      constants.TRANSFORMED_FEATURES_KEY: {}},
      include_default_inputs=False, name='TopKRankingInputs')
  computations = []
  for model in model_names or ['']:
    make = lambda n, sub_key=None: metric_types.MetricKey(
        n, model_name=model, sub_key=sub_key, example_weighted=None)
    keys = {n: make(n) for n in names}
    curve_keys = {n: [make(n, metric_types.SubKey(top_k=k)) for k in range(1, MAX_K + 1)]
                  for n in (PRECISION_CURVE, RECALL_CURVE)}
    computations.append(metric_types.MetricComputation(
        keys=list(keys.values()) + [k for ks in curve_keys.values() for k in ks],
        preprocessors=[preprocessor],
        combiner=_TopKCombiner(keys, curve_keys, model, user_key, movie_key)))
  return computations


class TopKRanking(metric_types.Metric):
  """P@10, R@10, NDCG@10, MAP@10, coverage and P/R curves of each model's and most-popular's
  top-K lists over the whole catalogue, per eval user (see the module docstring)."""

  def __init__(self, user_key: str, movie_key: str, name: Optional[str] = None):
    super().__init__(_top_k, user_key=user_key, movie_key=movie_key,
                     name=name or key_name(RANKING, f'ndcg@{CUTOFF}'))


metric_types.register_metric(TopKRanking)
