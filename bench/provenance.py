"""What every benchmark result records about where it was measured: the machine and the commit."""

import os
import platform
import subprocess

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine() -> str:
  cpu = platform.processor()
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    pass
  memory = ''
  try:
    with open('/proc/meminfo', encoding='utf-8') as f:
      kib = int(next(line.split()[1] for line in f if line.startswith('MemTotal')))
    memory = f', {kib / 2 ** 20:.0f} GiB'
  except (OSError, StopIteration, ValueError):
    pass
  return f'{os.cpu_count()} CPUs ({cpu}){memory}, Python {platform.python_version()}'


def commit() -> str:
  """The short hash of HEAD, with '+changes' when the working tree differs from it."""
  try:
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=PROJECT_DIR, check=True,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                           cwd=PROJECT_DIR, check=True, capture_output=True, text=True).stdout
    return head + ('+changes' if dirty.strip() else '')
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'
