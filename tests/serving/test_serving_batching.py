"""serving/batching.py: merged calls give each request exactly its unbatched answer.

The servable here is a small numpy stand-in with the same contract as `recommend` (blank past a
row's k, '' pads ignored), so the merging rules are checked in a second; the serving end-to-end
tests run the real SavedModels through the same batcher.
"""

import asyncio

import numpy as np

from serving.batching import Batcher
from serving.status import ServingError, invalid

CATALOGUE = np.array([f'm{i}' for i in range(20)], dtype=object)


class Recommender:
  """`recommend`-like: scores by user, drops excluded ids, top max(k), blank past each k."""

  def __init__(self):
    self.calls, self.rows = 0, []

  def run(self, signature_name, inputs):
    self.calls += 1
    self.rows.append(len(inputs['user_id']))
    k, users, exclude = inputs['k'], inputs['user_id'], inputs['exclude_movie_ids']
    if (k < 1).any():
      raise invalid('k must be at least 1')
    width = int(k.max())
    ids = np.full((len(users), width), '', dtype=object)
    scores = np.zeros((len(users), width), np.float32)
    for row, user in enumerate(users):
      order = [m for m in np.roll(CATALOGUE, int(user[1:])) if m not in set(exclude[row])]
      ids[row, :k[row]] = order[:k[row]]
      scores[row, :k[row]] = np.arange(k[row], 0, -1)
    return {'movie_ids': ids, 'scores': scores}


def _request(i):
  width = i % 3  # different exclude widths: merged calls must pad them with ''
  exclude = [[f'm{(i + j) % 20}' for j in range(width)] or ['']]
  return {'user_id': np.array([f'u{i}'], dtype=object), 'k': np.array([1 + i % 5], np.int32),
          'exclude_movie_ids': np.array(exclude, dtype=object)}


def _concurrently(batcher, servable, requests):
  """Submits every request from the same event loop turn; (outputs or error message) each."""
  async def main():
    futures = [batcher.submit(servable, 'recommend', r) for r in requests]
    results = []
    for future in futures:
      try:
        results.append(await future)
      except ServingError as e:
        results.append(e.message)
    return results
  return asyncio.run(main())


def test_concurrent_requests_share_calls_and_get_their_own_answers():
  servable = Recommender()
  answers = _concurrently(Batcher(max_batch_size=16), servable, [_request(i) for i in range(40)])
  assert servable.rows == [16, 16, 8]  # merged, at most max_batch_size rows per call
  alone = Recommender()
  for i in range(40):
    expected = alone.run('recommend', _request(i))
    assert answers[i]['movie_ids'].tolist() == expected['movie_ids'].tolist()
    np.testing.assert_array_equal(answers[i]['scores'], expected['scores'])


def test_a_bad_request_fails_alone():
  requests = [_request(i) for i in range(12)]
  requests[3]['k'] = np.array([0], np.int32)
  results = _concurrently(Batcher(), Recommender(), requests)
  assert results[3] == 'k must be at least 1'
  assert all(results[i]['movie_ids'].shape == (1, 1 + i % 5) for i in range(12) if i != 3)


def test_a_lone_request_runs_alone_at_once():
  servable = Recommender()
  _concurrently(Batcher(), servable, [_request(1)])
  assert servable.rows == [1]
