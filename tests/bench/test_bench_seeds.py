"""bench/seeds.py: runs each checkout's local_runner.py per seed, alternating, and its statistics."""

import json
import math
import os
import re
import textwrap

import pytest

from bench import seeds

# A stand-in checkout's local_runner.py: writes the run summary fields bench.seeds reads, with
# metrics that depend on the seed and on the checkout (OFFSET), and notes the order of runs.
FAKE_RUNNER = textwrap.dedent('''\
    import argparse, json, os
    parser = argparse.ArgumentParser()
    parser.add_argument('--data-dir'); parser.add_argument('--seed', type=int)
    parser.add_argument('--output-dir'); parser.add_argument('--epochs')
    args = parser.parse_args()
    assert args.epochs == '1'
    os.makedirs(args.output_dir)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'order.txt'), 'a') as f:
      f.write(f'{os.path.basename(os.path.dirname(os.path.abspath(__file__)))} {args.seed}\\n')
    value = OFFSET + args.seed / 100
    models = [{'name': name, 'metrics': {'rmse': value + i}, 'ranking': {'ndcg@10': value / 2}}
              for i, name in enumerate(['content_based', 'collaborative_filtering'])]
    with open(os.path.join(args.output_dir, 'run_summary.json'), 'w') as f:
      json.dump({'models': models}, f)
    ''')


def _checkout(path, offset):
  path.mkdir()
  (path / 'local_runner.py').write_text(FAKE_RUNNER.replace('OFFSET', str(offset)))
  return path


def test_each_seed_runs_with_each_code_in_turn_and_the_report_has_their_difference(
    tmp_path, monkeypatch):
  mine, other = _checkout(tmp_path / 'mine', 1.0), _checkout(tmp_path / 'other', 0.9)
  monkeypatch.setattr(seeds.provenance, 'PROJECT_DIR', str(mine))
  output = tmp_path / 'seeds.md'
  assert seeds.main(['--seeds', '1,2,3', '--against', str(other), '--data-dir', str(tmp_path),
                     '--runner-arg=--epochs=1', '--output', str(output)]) == 0
  assert (tmp_path / 'order.txt').read_text().split('\n')[:-1] == [
      'mine 1', 'other 1', 'mine 2', 'other 2', 'mine 3', 'other 3']
  report = json.loads(output.with_suffix('.json').read_text())
  assert [r['seed'] for r in report['runs']['other']] == [1, 2, 3]
  summary = report['summary']
  cb_rmse = summary[seeds.THIS]['content_based']['rmse']
  assert cb_rmse['mean'] == pytest.approx(1.02) and cb_rmse['sd'] == pytest.approx(0.01)
  assert cb_rmse['se'] == pytest.approx(0.01 / math.sqrt(3))
  assert summary['other']['collaborative_filtering']['rmse']['mean'] == pytest.approx(1.92)
  difference = summary['difference']['content_based']['rmse']
  assert difference['mean'] == pytest.approx(0.1)
  assert difference['se'] == pytest.approx(math.hypot(cb_rmse['se'], cb_rmse['se']))
  assert summary['difference']['collaborative_filtering']['ndcg@10']['mean'] == pytest.approx(0.05)
  markdown = output.read_text()
  assert '| other | 2 | 0.9200 | 0.4600 | 1.9200 | 0.4600 |' in markdown
  assert '+0.1000 ± 0.0082' in markdown


def test_a_failed_run_stops_the_benchmark_naming_its_log_which_is_kept(tmp_path, monkeypatch):
  mine = _checkout(tmp_path / 'mine', 1.0)
  (mine / 'local_runner.py').write_text('raise SystemExit(3)\n')
  monkeypatch.setattr(seeds.provenance, 'PROJECT_DIR', str(mine))
  monkeypatch.setattr(seeds.tempfile, 'tempdir', str(tmp_path))
  with pytest.raises(SystemExit, match=r'seed 7: .*exited with 3 \(log: .*code0-seed7\.log\)') as e:
    seeds.main(['--seeds', '7', '--data-dir', str(tmp_path), '--output', str(tmp_path / 'seeds.md')])
  # The temporary work folder is kept, so the log the message names is there to read.
  log = re.search(r'\(log: (.*)\)', str(e.value)).group(1)
  assert os.path.isfile(log) and log.startswith(str(tmp_path))


@pytest.mark.parametrize('text', ['1,x', '1,1'])
def test_seeds_must_be_distinct_whole_numbers(text, capsys):
  with pytest.raises(SystemExit):
    seeds.main(['--seeds', text])
  assert '--seeds' in capsys.readouterr().err
