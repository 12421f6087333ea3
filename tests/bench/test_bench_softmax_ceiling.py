"""bench/softmax_ceiling.py: the model's exact-softmax products, timed at its shapes."""

import re

import pytest

from bench import softmax_ceiling


def test_prints_the_step_time_and_the_throughput_it_allows(capsys):
  assert softmax_ceiling.main(['--users', '6', '--movies', '9', '--dim', '3',
                               '--ranking-dim', '2', '--repeats', '3']) == 0
  lines = capsys.readouterr().out.splitlines()
  step = re.match(r'6 users x 9 movies x 3 \+ 2 factors: ([0-9.]+) ms per step \(median of 3; '
                  r'products 0\.00 GFLOP', lines[0])
  assert step and float(step.group(1)) > 0
  limits = [re.fullmatch(r'  batch (\d+): at most ([0-9,]+) examples/s', line)
            for line in lines[1:]]
  assert [int(m.group(1)) for m in limits] == list(softmax_ceiling.BATCHES)
  rates = [int(m.group(2).replace(',', '')) for m in limits]
  assert rates == sorted(rates) and rates[0] > 0  # proportional to the batch


def test_sizes_must_be_positive(capsys):
  with pytest.raises(SystemExit) as stopped:
    softmax_ceiling.main(['--users', '0'])
  assert stopped.value.code == 2
  assert 'must be at least 1' in capsys.readouterr().err
