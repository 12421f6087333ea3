"""What every benchmark result records (when, on what machine, at which commit, against which
targets) and how it is written: a Markdown table for people and the same report as JSON."""

import datetime
import json
import os
import platform
import subprocess
from typing import Dict, List, Tuple

from components import atomic_files

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real MovieLens 100K the benchmarks and the tests (conftest.py) read.
ML_100K_DIR = os.environ.get('MOVIELENS_100K_DIR', os.path.join(
    os.path.dirname(PROJECT_DIR), 'shared', 'datasets', 'ml-100k'))


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


def commit(checkout: str = PROJECT_DIR) -> str:
  """The short hash of `checkout`'s HEAD, with '+changes' when its working tree differs from
  it."""
  try:
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=checkout, check=True,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                           cwd=checkout, check=True, capture_output=True, text=True).stdout
    return head + ('+changes' if dirty.strip() else '')
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'


def now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')


def targets_table(targets: Dict[str, Tuple[float, float, bool]], issue: str) -> List[str]:
  """Markdown lines comparing measured values with an issue's floors.

  `targets`: name -> (floor, measured value, met).
  """
  lines = ['', f'## Against the targets (floors of the {issue} issue)', '',
           '| target | floor | measured | met |', '|---|---:|---:|---|']
  for name, (floor, value, met) in targets.items():
    lines.append(f'| {name} | {floor:g} | {value:,.2f} | {"yes" if met else "NO"} |')
  return lines


def write(markdown_path: str, markdown: str, report: dict) -> None:
  """`markdown_path` and the report as JSON beside it (.json), each written then renamed."""
  for path, text in ((markdown_path, markdown),
                     (os.path.splitext(markdown_path)[0] + '.json', json.dumps(report, indent=2))):
    atomic_files.write(path, text)
