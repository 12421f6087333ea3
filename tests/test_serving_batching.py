"""serving/batching.py: merged calls give each request exactly its unbatched answer.

The servable here is a small numpy stand-in with the same contract as `recommend` (blank past a
row's k, '' pads ignored), so the merging rules are checked with many threads in a second; the
serving end-to-end tests run the real SavedModels through the same batcher.
"""

import threading
import time

import numpy as np
import pytest

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
    time.sleep(0.01)  # long enough for others to queue behind a running call
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


def test_concurrent_requests_share_calls_and_get_their_own_answers():
  servable, batcher = Recommender(), Batcher(max_batch_size=64)
  answers, errors = {}, []

  def client(i):
    try:
      answers[i] = batcher.run(servable, 'recommend', _request(i))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert not errors
  assert servable.calls < 40 and max(servable.rows) > 1  # requests were merged
  alone = Recommender()
  for i in range(40):
    expected = alone.run('recommend', _request(i))
    assert answers[i]['movie_ids'].tolist() == expected['movie_ids'].tolist()
    np.testing.assert_array_equal(answers[i]['scores'], expected['scores'])


def test_a_bad_request_fails_alone():
  servable, batcher = Recommender(), Batcher()
  results = {}

  def client(i):
    request = _request(i)
    if i == 3:
      request['k'] = np.array([0], np.int32)
    try:
      results[i] = batcher.run(servable, 'recommend', request)['movie_ids'].shape
    except ServingError as e:
      results[i] = e.message

  threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert results[3] == 'k must be at least 1'
  assert all(results[i] == (1, 1 + i % 5) for i in range(12) if i != 3)


def test_idle_server_runs_a_request_at_once():
  servable, batcher = Recommender(), Batcher()
  batcher.run(servable, 'recommend', _request(1))
  assert servable.rows == [1]  # alone, in one call: nothing waits for company
  with pytest.raises(ServingError):
    bad = _request(2)
    bad['k'] = np.array([0], np.int32)
    batcher.run(servable, 'recommend', bad)
