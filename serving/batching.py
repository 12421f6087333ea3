"""Request batching: concurrent calls of one signature share one TensorFlow call.

One call of a small signature costs about the same for 1 row as for 64. The REST and gRPC front
ends share one asyncio event loop; each request they decode is queued here per (model version,
signature), and once the loop has handled the events at hand, one flush runs every queue's
requests as merged calls on the loop thread. There is no timer and no thread hop: an idle server
runs a request at once; under load a flush waits a few loop turns while requests keep arriving,
and those that arrive while a call runs make up the next one.
This is TF Serving's `--enable_batching` idea, done with the padding rules of these models'
signatures:
- rank-1 inputs are concatenated; rank-2 inputs (`exclude_movie_ids`, `rated_movie_ids`,
  `rated_ratings`) are padded to the widest request with '' / 0, which the signatures define as
  padding (TF Serving pads with each tensor's first value instead, see
  serving/docker-compose.yml);
- outputs are split back by rows; where the signature takes `k`, rank-2 outputs are cut to the
  request's own max(k), so every client gets exactly the answer of an unbatched call;
- if a merged call fails (one request with a bad `k` or an unknown movie), each request of it is
  run alone, so only the bad one gets the error.
"""

import asyncio
from typing import Dict, List

import numpy as np

from serving.status import ServingError


class _Task:
  __slots__ = ('inputs', 'rows', 'future')

  def __init__(self, inputs: Dict[str, np.ndarray], future: asyncio.Future):
    self.inputs, self.rows, self.future = inputs, _rows(inputs), future


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
  """Merges the signature calls queued on one event loop; use it from that loop only."""

  MAX_DEFERRALS = 4  # loop turns a flush may wait while requests keep arriving

  def __init__(self, max_batch_size: int = 64):
    self.max_batch_size = max_batch_size
    self._queues: Dict[tuple, List[_Task]] = {}
    self._flush_scheduled = False
    self._arrivals = 0   # requests queued since the flush was scheduled
    self._deferrals = 0

  def submit(self, servable, signature_name: str,
             inputs: Dict[str, np.ndarray]) -> asyncio.Future:
    """Queues a call; the future holds its outputs or its error."""
    loop = asyncio.get_running_loop()
    task = _Task(inputs, loop.create_future())
    if task.rows < 0 or task.rows > self.max_batch_size:
      task.rows = self.max_batch_size  # runs alone
    key = (servable, signature_name,
           tuple(sorted((k, a.dtype.str, a.ndim) for k, a in inputs.items())))
    self._queues.setdefault(key, []).append(task)
    if self._flush_scheduled:
      self._arrivals += 1
    else:
      self._flush_scheduled, self._arrivals = True, 0
      loop.call_soon(self._flush)
    return task.future

  def _flush(self):
    # Requests arrived since the flush was scheduled: others are likely on their way (gRPC's
    # poller hands them over one by one), so wait a loop turn or a few for them to join.
    if self._arrivals and self._deferrals < self.MAX_DEFERRALS:
      self._arrivals, self._deferrals = 0, self._deferrals + 1
      asyncio.get_running_loop().call_soon(self._flush)
      return
    self._flush_scheduled, self._deferrals = False, 0
    queues, self._queues = self._queues, {}
    for (servable, signature_name, _), tasks in queues.items():
      while tasks:
        batch, rows = [], 0
        while tasks and (not batch or rows + tasks[0].rows <= self.max_batch_size):
          rows += tasks[0].rows
          batch.append(tasks.pop(0))
        self._execute(servable, signature_name, batch)

  @staticmethod
  def _execute(servable, signature_name, batch: List[_Task]):
    batch = [t for t in batch if not t.future.done()]  # a client that went away
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
      except Exception as e:  # pylint: disable=broad-except  (the awaiting request re-raises it)
        task.future.set_exception(e)
