"""Request batching: concurrent calls of one signature share one TensorFlow call.

One call of a small signature costs about the same for 1 row as for 64, so under load the server
merges the requests that arrive while a call of the same signature is running into the next
call (no timer: an idle server runs a request at once, adding no latency). This is TF Serving's
`--enable_batching` idea, done with the padding rules of these models' signatures:
- rank-1 inputs are concatenated; rank-2 inputs (`exclude_movie_ids`, `rated_movie_ids`,
  `rated_ratings`) are padded to the widest request with '' / 0, which the signatures define as
  padding (TF Serving pads with each tensor's first value instead, see serving/docker-compose.yml);
- outputs are split back by rows; where the signature takes `k`, rank-2 outputs are cut to the
  request's own max(k), so every client gets exactly the answer of an unbatched call;
- if a merged call fails (one request with a bad `k` or an unknown movie), each request of it is
  run alone, so only the bad one gets the error.
"""

import threading
from typing import Dict, List

import numpy as np

from serving.status import ServingError


class _Task:
  __slots__ = ('inputs', 'rows', 'outputs', 'error', 'done', 'lead')

  def __init__(self, inputs: Dict[str, np.ndarray]):
    self.inputs, self.rows = inputs, _rows(inputs)
    self.outputs, self.error, self.lead = None, None, False
    self.done = threading.Event()


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
  """Runs `servable.run(signature, inputs)`, merging concurrent calls of the same signature."""

  def __init__(self, max_batch_size: int = 64):
    self.max_batch_size = max_batch_size
    self._lock = threading.Lock()
    self._queues: Dict[tuple, List[_Task]] = {}
    self._running = set()

  def run(self, servable, signature_name: str, inputs: Dict[str, np.ndarray]):
    task = _Task(inputs)
    if task.rows < 0 or task.rows > self.max_batch_size:
      return servable.run(signature_name, inputs)
    key = (id(servable), signature_name,
           tuple(sorted((k, a.dtype.str, a.ndim) for k, a in inputs.items())))
    with self._lock:
      self._queues.setdefault(key, []).append(task)
      if key not in self._running:
        self._running.add(key)
        task.lead = True
    if not task.lead:
      task.done.wait()
    if task.lead:  # this thread runs the next merged call, then hands the lead on
      self._lead(key, servable, signature_name)
    if task.error is not None:
      raise task.error
    return task.outputs

  def _lead(self, key, servable, signature_name):
    with self._lock:
      queue = self._queues[key]
      batch, rows = [], 0
      while queue and rows + queue[0].rows <= self.max_batch_size:
        rows += queue[0].rows
        batch.append(queue.pop(0))
    self._execute(servable, signature_name, batch)
    with self._lock:
      queue = self._queues[key]
      if queue:
        queue[0].lead = True
        queue[0].done.set()  # wakes the next leader
      else:
        self._running.discard(key)
        del self._queues[key]
    for task in batch:
      task.lead = False
      task.done.set()

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
          task.outputs = {name: (value[start:start + task.rows, :width]
                                 if width is not None and value.ndim == 2
                                 else value[start:start + task.rows])
                          for name, value in outputs.items()}
          start += task.rows
        return
    for task in batch:
      try:
        task.outputs = servable.run(signature_name, task.inputs)
      except ServingError as e:
        task.error = e
      except Exception as e:  # pylint: disable=broad-except
        task.error = e
