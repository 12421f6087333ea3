"""Live progress of a local run: which component runs now, and how long each one took.

TFX, Beam and TensorFlow write hundreds of log lines to
stdout and stderr, from Python and from C++. During a run, `capture_output` sends all of it to
`<output-dir>/logs/run-<time>.log`, and `track_components` times every component launch of the
local runner and prints one line per component on the real terminal.
"""

import contextlib
import os
import sys
import threading
import time
from typing import Dict, Iterator, List, Optional, TextIO, Tuple



class ComponentProgress:
  """Prints `[n] Component ... done in 12.3 s` lines and records durations.

  Components may run at once (pipeline/concurrent_runner.py): a line left open by a component
  that is still running when another starts or ends is closed with `running`, and its
  component's result comes later on a line of its own, with the same number."""

  def __init__(self, stream: TextIO):
    self.stream = stream
    self.durations: Dict[str, float] = {}
    self.start_times: Dict[str, float] = {}  # UNIX seconds (bench/pipeline.py lines up memory)
    self.order: List[str] = []
    self.failed_node: Optional[str] = None
    self._open_line: Optional[str] = None  # the component whose line awaits its result
    self._lock = threading.Lock()

  def _close_open_line(self) -> None:
    if self._open_line is not None:
      self.stream.write('running\n')
      self._open_line = None

  def started(self, node_id: str) -> None:
    with self._lock:
      self._close_open_line()
      self.order.append(node_id)
      self.start_times[node_id] = time.time()
      self.stream.write(f'[{len(self.order):2d}] {node_id} ... ')
      self._open_line = node_id
      self.stream.flush()

  def finished(self, node_id: str, seconds: float, ok: bool) -> None:
    with self._lock:
      self.durations[node_id] = round(seconds, 2)
      if not ok and self.failed_node is None:
        self.failed_node = node_id
      if self._open_line != node_id:
        self._close_open_line()
        self.stream.write(f'[{self.order.index(node_id) + 1:2d}] {node_id} ... ')
      self._open_line = None
      self.stream.write(f'{"done" if ok else "FAILED"} in {seconds:.1f} s\n')
      self.stream.flush()


@contextlib.contextmanager
def track_components(progress: ComponentProgress) -> Iterator[ComponentProgress]:
  """Times each `Launcher.launch()` of the local runner (the same for cached components)."""
  from tfx.orchestration.portable import launcher as launcher_lib  # pylint: disable=import-outside-toplevel
  original = launcher_lib.Launcher.launch

  def launch(self, *args, **kwargs):
    node_id = self._pipeline_node.node_info.id  # pylint: disable=protected-access
    progress.started(node_id)
    started, ok = time.monotonic(), False
    try:
      result = original(self, *args, **kwargs)
      ok = True
      return result
    finally:
      progress.finished(node_id, time.monotonic() - started, ok)

  launcher_lib.Launcher.launch = launch
  try:
    yield progress
  finally:
    launcher_lib.Launcher.launch = original


@contextlib.contextmanager
def capture_output(log_path: str) -> Iterator[Tuple[TextIO, TextIO]]:
  """Redirects file descriptors 1 and 2 to `log_path`; yields streams to the real stdout and
  stderr."""
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  sys.stdout.flush()
  sys.stderr.flush()
  saved_out, saved_err = os.dup(1), os.dup(2)
  real_out = os.fdopen(os.dup(1), 'w', buffering=1)
  real_err = os.fdopen(os.dup(2), 'w', buffering=1)
  with open(log_path, 'ab') as log:
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
      yield real_out, real_err
    finally:
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved_out, 1)
      os.dup2(saved_err, 2)
      os.close(saved_out)
      os.close(saved_err)
      real_out.close()
      real_err.close()
