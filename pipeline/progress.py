"""Live progress of a local run: which component runs now, and how long each one took.

TFX's LocalDagRunner announces each component through absl logging ("Component X is running."
/ "... is finished."). This handler turns those two messages into one line per component and
keeps the durations for the run summary, while the rest of TFX's INFO chatter stays hidden.
"""

import logging
import sys
import time
from typing import Dict, List, Optional, TextIO

_RUNNING = 'Component %s is running.'
_FINISHED = 'Component %s is finished.'


class ComponentProgress(logging.Handler):
  """Prints `[n] Component ... done in 12.3 s` lines and records durations."""

  def __init__(self, stream: TextIO = sys.stderr):
    super().__init__(level=logging.INFO)
    self.stream = stream
    self.durations: Dict[str, float] = {}
    self.order: List[str] = []
    self.current: Optional[str] = None
    self._started = 0.0

  def emit(self, record: logging.LogRecord) -> None:
    if record.msg not in (_RUNNING, _FINISHED) or not record.args:
      return
    node_id = str(record.args[0])
    now = time.monotonic()
    if record.msg == _RUNNING:
      self.current, self._started = node_id, now
      self.order.append(node_id)
      self.stream.write(f'[{len(self.order):2d}] {node_id} ... ')
    else:
      seconds = now - self._started
      self.durations[node_id] = round(seconds, 2)
      self.current = None
      self.stream.write(f'done in {seconds:.1f} s\n')
    self.stream.flush()

  def failed(self) -> None:
    """Ends the current component's line when the run stops inside it."""
    if self.current is not None:
      self.stream.write('FAILED\n')
      self.stream.flush()


def attach(verbose: bool = False) -> ComponentProgress:
  """Routes TFX's component announcements to a ComponentProgress; hides other INFO logs
  unless `verbose`."""
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  progress = ComponentProgress()
  absl_logger = logging.getLogger('absl')
  absl_logger.setLevel(logging.INFO)
  absl_logger.addHandler(progress)
  if not verbose:
    absl_logging.get_absl_handler().setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
      handler.setLevel(logging.WARNING)
  return progress
