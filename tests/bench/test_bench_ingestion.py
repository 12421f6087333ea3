"""bench/ingestion.py: ingestion's time and peak memory by size, written with its provenance."""

import json

from bench import ingestion


def test_measures_each_size_and_writes_the_growth_against_the_floor(tmp_path):
  results = tmp_path / 'ingestion.md'
  assert ingestion.main(['--sizes', '20000,60000', '--work-dir', str(tmp_path / 'work'),
                         '--results', str(results)]) == 0
  report = json.loads((tmp_path / 'ingestion.json').read_text())
  assert [row['data'] for row in report['rows']] == ['synthetic 20,000', 'synthetic 60,000']
  for row, size in zip(report['rows'], (20_000, 60_000)):
    assert row['ratings']['train'] + row['ratings']['eval'] == size
    assert row['seconds'] > 0 and row['peak_mib'] > 10
  assert report['peak_growth'] == report['rows'][1]['peak_mib'] / report['rows'][0]['peak_mib']
  text = results.read_text()
  assert 'Command: `python -m bench.ingestion --sizes 20000,60000' in text
  assert 'Peak at synthetic 60,000 over the peak at synthetic 20,000' in text


def test_example_gen_is_timed_on_what_ingestion_prepared(tmp_path):
  results = tmp_path / 'ingestion.md'
  assert ingestion.main(['--sizes', '20000', '--example-gen', '--work-dir',
                         str(tmp_path / 'work'), '--results', str(results)]) == 0
  [row] = json.loads((tmp_path / 'ingestion.json').read_text())['rows']
  assert row['example_gen']['seconds'] > 0 and row['example_gen']['peak_mib'] > 10
  assert '| CsvExampleGen seconds |' in results.read_text()
