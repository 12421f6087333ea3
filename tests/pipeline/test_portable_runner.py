"""The distributed path: the whole DAG with its Beam steps submitted as jobs to Beam's own
portable job service (`apache_beam.runners.portability.local_job_service_main`, LOOPBACK
workers). That is the job API Flink's and Spark's job servers speak, so this run is the
rehearsal for `--beam-arg=--runner=PortableRunner --beam-arg=--job_endpoint=<their server>`.

The same 3,000-rating sample as the DirectRunner run of tests/conftest.py `finished_run`: the
pushed models must answer as that run's do.
"""

import contextlib
import csv
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from components.data import features
from tests.conftest import MODELS, run_pipeline

# The top-level Beam transform that tells which component submitted a job.
COMPONENT_OF_TRANSFORM = {'InputToRecord[train]': 'CsvExampleGen',
                          'GenerateStatistics[train]': 'StatisticsGen',
                          'Analyze': 'Transform',
                          'ExtractEvaluateAndWriteResults': 'Evaluator'}


@contextlib.contextmanager
def job_service(folder):
  """Beam's local job service on a free port of the loopback interface; yields the port."""
  port_file = os.path.join(folder, 'port')
  log = open(os.path.join(folder, 'job_service.log'), 'w', encoding='utf-8')
  process = subprocess.Popen(
      [sys.executable, '-m', 'apache_beam.runners.portability.local_job_service_main',
       '--port', '0', '--port_file', port_file, '--staging_dir', os.path.join(folder, 'staging')],
      stdout=log, stderr=subprocess.STDOUT)
  try:
    deadline = time.monotonic() + 120
    while not (os.path.isfile(port_file) and open(port_file, encoding='utf-8').read().strip()):
      if process.poll() is not None or time.monotonic() > deadline:
        raise RuntimeError(f'the job service did not start; see {log.name}')
      time.sleep(0.5)
    yield int(open(port_file, encoding='utf-8').read())
  finally:
    process.terminate()
    process.wait(timeout=30)
    log.close()


def submitted_jobs(port):
  """[(state name, component)] of every job the service ran, the component read off the
  job's top-level transforms."""
  import grpc  # pylint: disable=import-outside-toplevel
  from apache_beam.portability.api import beam_job_api_pb2  # pylint: disable=import-outside-toplevel
  from apache_beam.portability.api import beam_job_api_pb2_grpc  # pylint: disable=import-outside-toplevel
  with grpc.insecure_channel(f'localhost:{port}') as channel:
    stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
    jobs = []
    for job in stub.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=30).job_info:
      pipeline = stub.GetPipeline(beam_job_api_pb2.GetJobPipelineRequest(job_id=job.job_id),
                                  timeout=30).pipeline
      transforms = pipeline.components.transforms
      top = {transforms[sub].unique_name for root in pipeline.root_transform_ids
             for sub in transforms[root].subtransforms}
      found = sorted({COMPONENT_OF_TRANSFORM[name] for name in top
                      if name in COMPONENT_OF_TRANSFORM})
      jobs.append((beam_job_api_pb2.JobState.Enum.Name(job.state), '+'.join(found) or None))
    return jobs


def _eval_examples(summary, count=200):
  """The first `count` eval ratings as serialized tf.Examples, typed as the schema types them."""
  path = os.path.join(summary['data']['input_base'], 'eval', 'ratings.csv')
  with open(path, encoding='utf-8', newline='') as f:
    rows = [row for _, row in zip(range(count), csv.DictReader(f))]
  examples = []
  for row in rows:
    feature = {
        name: (tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
               if features.RAW_FEATURE_TYPES[name] == features.INT else
               tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()])))
        for name, value in row.items() if name != features.LABEL}
    examples.append(tf.train.Example(features=tf.train.Features(feature=feature))
                    .SerializeToString())
  return examples


def test_beam_steps_run_as_jobs_on_the_portable_job_service_and_the_models_match(
    finished_run, tmp_path):
  data_dir, _, _, direct = finished_run
  output_dir = str(tmp_path / 'portable')
  with job_service(str(tmp_path)) as port:
    result, portable = run_pipeline(
        data_dir, output_dir, '--beam-arg=--runner=PortableRunner',
        f'--beam-arg=--job_endpoint=localhost:{port}', '--beam-arg=--environment_type=LOOPBACK')
    jobs = submitted_jobs(port)
  assert result.returncode == 0, result.stdout + result.stderr
  assert portable['status'] == 'succeeded'

  # Every Beam step of the DAG went to the job service, once per run, and finished there.
  assert sorted(component for _, component in jobs) == sorted(
      ['CsvExampleGen', 'StatisticsGen', 'Transform'] + ['Evaluator'] * len(MODELS)), jobs
  assert {state for state, _ in jobs} == {'DONE'}, jobs

  # The same models: metrics, lists and the pushed SavedModels' answers.
  assert portable['data']['num_ratings'] == direct['data']['num_ratings']
  examples = tf.constant(_eval_examples(direct))
  for there, here in zip(direct['models'], portable['models']):
    assert here['name'] == there['name']
    assert here['blessed'] and here['pushed'], here['why_not_pushed']
    for metric in ('rmse', 'mae', 'example_count'):
      assert here['metrics'][metric] == pytest.approx(there['metrics'][metric], abs=1e-5)
    for mine, theirs in zip(here['example_lists'], there['example_lists'], strict=True):
      assert [m['movie_id'] for m in mine['top']] == [m['movie_id'] for m in theirs['top']]
      np.testing.assert_allclose([m['score'] for m in mine['top']],
                                 [m['score'] for m in theirs['top']], atol=1e-5)
    ratings = [tf.saved_model.load(model['pushed_version_path'])
               .signatures['serving_default'](examples=examples)['rating'].numpy()
               for model in (there, here)]
    np.testing.assert_allclose(ratings[1], ratings[0], atol=1e-5)
