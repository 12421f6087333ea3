"""Request batching: concurrent calls of one signature share one TensorFlow call.

One call of a small signature costs about the same for 1 row as for 64, so the server queues
requests per (model version, signature) and a few worker threads run each queue's waiting
requests as one merged call. There is no timer: an idle worker takes a request at once, and the
requests that arrive while a call runs make up the next one. This is TF Serving's
`--enable_batching` idea, done with the padding rules of these models' signatures:
- rank-1 inputs are concatenated; rank-2 inputs (`exclude_movie_ids`, `rated_movie_ids`,
  `rated_ratings`) are padded to the widest request with '' / 0, which the signatures define as
  padding (TF Serving pads with each tensor's first value instead, see
  serving/docker-compose.yml);
- outputs are split back by rows; where the signature takes `k`, rank-2 outputs are cut to the
  request's own max(k), so every client gets exactly the answer of an unbatched call;
- if a merged call fails (one request with a bad `k` or an unknown movie), each request of it is
  run alone, so only the bad one gets the error.
Few threads run TensorFlow (`workers`), so request threads do not fight over Python's GIL.
"""

import collections
import concurrent.futures
import threading
from typing import Dict, List

import numpy as np

from serving.status import ServingError


class _Task:
  __slots__ = ('inputs', 'rows', 'future')

  def __init__(self, inputs: Dict[str, np.ndarray]):
    self.inputs, self.rows = inputs, _rows(inputs)
    self.future = concurrent.futures.Future()


def _rows(inputs) -> int:
  """The batch size of a request, or -1 when it cannot be merged with others."""
  sizes = {a.shape[0] if a.ndim else -1 for a in inputs.values()}
  if len(sizes) != 1 or any(a.ndim > 2 for a in inputs.values()):
    return -1
  return sizes.pop()


def _merge(tasks: List[_Task]) -> Dict[str, np.ndarray]:
  merged = {}
  for name in tasks[0].inputs:
    parts = [t.inputs[name] for t in tasks]
    if parts[0].ndim == 2:
      width = max(p.shape[1] for p in parts)
      pad = '' if parts[0].dtype == object else 0
      parts = [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=pad)
               if p.shape[1] < width else p for p in parts]
    merged[name] = np.concatenate(parts)
  return merged


class Batcher:
  """Runs `servable.run(signature, inputs)` for many threads, merging concurrent calls."""

  def __init__(self, max_batch_size: int = 64, workers: int = 2):
    self.max_batch_size = max_batch_size
    self._ready = threading.Condition()
    self._queues: Dict[tuple, collections.deque] = {}
    self._busy = set()  # queues a worker is running now
    for index in range(workers):
      threading.Thread(target=self._work, name=f'batcher-{index}', daemon=True).start()

  def submit(self, servable, signature_name: str,
             inputs: Dict[str, np.ndarray]) -> concurrent.futures.Future:
    """Queues a call; the future holds its outputs or its error."""
    task = _Task(inputs)
    if task.rows < 0 or task.rows > self.max_batch_size:
      task.rows = self.max_batch_size  # runs alone
    key = (servable, signature_name,
           tuple(sorted((k, a.dtype.str, a.ndim) for k, a in inputs.items())))
    with self._ready:
      self._queues.setdefault(key, collections.deque()).append(task)
      self._ready.notify()
    return task.future

  def run(self, servable, signature_name: str, inputs: Dict[str, np.ndarray]):
    return self.submit(servable, signature_name, inputs).result()

  def _next_batch(self):
    with self._ready:
      while True:
        for key, queue in self._queues.items():
          if queue and key not in self._busy:
            batch, rows = [], 0
            while queue and (not batch or rows + queue[0].rows <= self.max_batch_size):
              rows += queue[0].rows
              batch.append(queue.popleft())
            self._busy.add(key)
            return key, batch
        self._ready.wait()

  def _work(self):
    while True:
      key, batch = self._next_batch()
      try:
        self._execute(key[0], key[1], batch)
      finally:
        with self._ready:
          self._busy.discard(key)
          if not self._queues[key]:
            del self._queues[key]  # no reference to an unloaded version stays behind
          self._ready.notify()

  @staticmethod
  def _execute(servable, signature_name, batch: List[_Task]):
    if len(batch) > 1:
      try:
        outputs = servable.run(signature_name, _merge(batch))
      except ServingError:
        outputs = None  # run each alone below, so only the bad request fails
      if outputs is not None:
        takes_k = 'k' in batch[0].inputs and batch[0].inputs['k'].ndim == 1
        start = 0
        for task in batch:
          width = int(task.inputs['k'].max()) if takes_k else None
          task.future.set_result({
              name: (value[start:start + task.rows, :width]
                     if width is not None and value.ndim == 2
                     else value[start:start + task.rows])
              for name, value in outputs.items()})
          start += task.rows
        return
    for task in batch:
      try:
        task.future.set_result(servable.run(signature_name, task.inputs))
      except Exception as e:  # pylint: disable=broad-except  (the caller re-raises it)
        task.future.set_exception(e)
