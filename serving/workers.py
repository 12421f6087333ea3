"""Several server processes behind the same two ports, so Python's one lock is not the ceiling.

One server process turns requests into TensorFlow calls on one event loop: Python's global lock
keeps it to about one core whatever the machine has. TF Serving is one process of C++ threads;
the Python equivalent is one process per core, each a whole server (its own models, batcher and
version polling), listening on the same REST and gRPC ports with SO_REUSEPORT so the kernel spreads
connections over them (Linux; on other systems use --workers 1).

The supervisor (this module, in the process you start) holds the ports reserved (bound, not
listening, so it takes no connections), starts the workers (`python -m serving.server` with
`--workers 1 --reuse_port` and the reserved ports), prints the server's ready line once every
worker has printed its own, restarts a worker that dies, and stops them all on SIGINT/SIGTERM.
A worker that fails before it is ready (a bad config, say) stops the server with its exit code:
its error is already on stderr.
"""

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional

_log = logging.getLogger('serving')
RESTARTS_PER_MINUTE = 5  # past this a worker that keeps dying stops the server


def reserve_port(host: str, port: int) -> socket.socket:
  """A socket bound to (host, port) with SO_REUSEPORT, not listening: the workers' port.

  A port some other server already listens on is refused (EADDRINUSE), even one that allows
  port sharing: two servers must not split one port's traffic between them.
  """
  family, kind, protocol, _, address = socket.getaddrinfo(
      host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
  if port:
    with socket.socket(family, kind, protocol) as probe:  # no SO_REUSEPORT: fails if taken
      probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      probe.bind(address)
  reserved = socket.socket(family, kind, protocol)
  reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
  reserved.bind(address)
  return reserved


class Supervisor:
  """Runs `count` worker processes on reserved ports; see the module docstring."""

  def __init__(self, argv: List[str], host: str, rest_port: int, grpc_port: int, count: int,
               ready_ports, ready_line):
    self.argv, self.count = argv, count
    self._ready_ports, self._ready_line = ready_ports, ready_line
    self._sockets = [reserve_port(host, rest_port), reserve_port(host, grpc_port)]
    self.rest_port, self.grpc_port = (s.getsockname()[1] for s in self._sockets)
    self.host = host
    self._workers: List[Optional[subprocess.Popen]] = [None] * count
    self._stopping = threading.Event()
    self._restarts: List[float] = []
    self._exit_code: Optional[int] = None  # of a worker that failed before it was ready

  def _command(self) -> List[str]:
    # argparse keeps the last value of a repeated flag: these override the user's.
    return [sys.executable, '-m', 'serving.server', *self.argv, '--workers', '1',
            '--reuse_port', '--port', str(self.grpc_port),
            '--rest_api_port', str(self.rest_port)]

  def _start(self, index: int) -> Optional[int]:
    """Starts worker `index` and waits for its ready line: None, or its exit code."""
    process = subprocess.Popen(self._command(), stdout=subprocess.PIPE, text=True)
    self._workers[index] = process
    for line in process.stdout:
      if self._ready_ports(line):
        threading.Thread(target=self._pass_output, args=(process,), daemon=True).start()
        return None
      sys.stdout.write(line)
    return process.wait()

  @staticmethod
  def _pass_output(process):
    for line in process.stdout:
      sys.stdout.write(line)
      sys.stdout.flush()

  def run(self) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM):
      signal.signal(signum, lambda *_: self._stopping.set())
    starters = [threading.Thread(target=self._start_or_stop, args=(i,)) for i in
                range(self.count)]
    for thread in starters:  # workers load their models side by side
      thread.start()
    for thread in starters:
      thread.join()
    if self._exit_code is not None:
      self._stop_all()
      return self._exit_code
    _log.info('%d worker processes: %s', self.count,
              ' '.join(str(p.pid) for p in self._workers))
    print(f'{self._ready_line}{self.host}:{self.rest_port}, gRPC on {self.host}:{self.grpc_port}',
          flush=True)
    while not self._stopping.wait(0.5):
      for index, process in enumerate(self._workers):
        if process.poll() is not None and not self._stopping.is_set():
          if not self._may_restart():
            _log.error('worker %d keeps exiting (code %s); stopping the server', process.pid,
                       process.returncode)
            self._stop_all()
            return 1
          _log.warning('worker %d exited with code %s; starting another', process.pid,
                       process.returncode)
          code = self._start(index)
          if code is not None:
            self._stop_all()
            return code
          _log.info('worker %d is serving in its place', self._workers[index].pid)
    self._stop_all()
    return 0

  def _start_or_stop(self, index):
    code = self._start(index)
    if code is not None and self._exit_code is None:
      self._exit_code = code

  def _may_restart(self) -> bool:
    now = time.monotonic()
    self._restarts = [t for t in self._restarts if now - t < 60] + [now]
    return len(self._restarts) <= RESTARTS_PER_MINUTE

  def _stop_all(self):
    self._stopping.set()
    running = [p for p in self._workers if p is not None and p.poll() is None]
    for process in running:
      process.send_signal(signal.SIGTERM)
    for process in running:
      try:
        process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        process.kill()
    for reserved in self._sockets:
      reserved.close()


def default_count() -> int:
  """One worker per core the process may use, at most 4 (each holds its own copy of the models)."""
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:
    cores = os.cpu_count() or 1
  return max(1, min(cores, 4))
