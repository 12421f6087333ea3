"""kubeflow_runner.py: the compiled KFP v2 spec, submitting and scheduling against a recording
KFP API, the preliminary data job, and the pipeline on Beam's multi-processing DirectRunner.

There is no Kubernetes cluster here: the spec is checked with KFP's own protos, the `kfp`
client's REST calls against a local HTTP server that records them (a contract test), and the
Beam mode by a real local run.
"""

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
import tensorflow as tf
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components.data import ingestion
from pipeline import kfp_client
from pipeline import prepare_data
from tests.conftest import ML_100K_DIR, MODELS, PROJECT_DIR, run_pipeline

IMAGE = 'europe-docker.pkg.dev/project/repo/movielens-recommender:1.0'
ROOT = 'gs://bucket/root'
BEAM_ARGS = ['--runner=DataflowRunner', '--project=my-project', '--region=europe-west1']
EXECUTOR = 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'


def _compile(tmp_path, name='pipeline.json', *extra):
  output = tmp_path / name
  result = subprocess.run(
      [sys.executable, 'kubeflow_runner.py', '--output-file', str(output), '--image', IMAGE,
       '--pipeline-root', ROOT, *[f'--beam-arg={arg}' for arg in BEAM_ARGS], *extra],
      cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
  return result, output


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  result, output = _compile(tmp_path_factory.mktemp('kfp'))
  assert result.returncode == 0, result.stderr
  with open(output, encoding='utf-8') as f:
    job = json.load(f)
  return output, job, json_format.ParseDict(job['pipelineSpec'], pipeline_spec_pb2.PipelineSpec())


def test_the_spec_has_every_component_with_its_dependencies(compiled):
  _, job, spec = compiled
  tasks = spec.root.dag.tasks
  for name in ('CsvExampleGen', 'StatisticsGen', 'ImportSchemaGen', 'ExampleValidator',
               'AnomaliesGate', 'Transform'):
    assert name in tasks, sorted(tasks)
  depends = {name: set(task.dependent_tasks) for name, task in tasks.items()}
  assert depends['StatisticsGen'] == {'CsvExampleGen'}
  assert depends['ExampleValidator'] == {'StatisticsGen', 'ImportSchemaGen'}
  assert depends['Transform'] == {'CsvExampleGen', 'AnomaliesGate'}
  for model in MODELS:
    assert depends[f'Trainer_{model}'] == {'Transform', 'AnomaliesGate'}
    assert {'CsvExampleGen', f'Trainer_{model}'} <= depends[f'Evaluator_{model}']
    assert any(d.startswith(f'LatestBlessedModel_{model}') for d in depends[f'Evaluator_{model}'])
    assert depends[f'Pusher_{model}'] == {f'Trainer_{model}', f'Evaluator_{model}'}
  assert job['displayName'] == spec.pipeline_info.name == 'movielens-recommender'


def test_every_step_runs_in_the_image_with_the_beam_args_and_the_root(compiled):
  _, job, spec = compiled
  executors = spec.deployment_spec.fields['executors'].struct_value.fields
  containers = {name: json_format.MessageToDict(value.struct_value)['container']
                for name, value in executors.items() if 'container' in value.struct_value.fields}
  assert len(containers) >= 12, sorted(executors)
  for name, container in containers.items():
    assert container['image'] == IMAGE, name
    assert container['command'][-1] == EXECUTOR, name
  beam = [c for c in containers.values() if set(BEAM_ARGS) <= set(c['args'])]
  beam_classes = {c['args'][c['args'].index('--executor_class_path') + 1] for c in beam}
  assert {'components.tfx.typed_csv_example_gen.Executor',
          'components.tfx.batch_io_transform.Executor',
          'tfx.components.evaluator.executor.Executor'} <= beam_classes
  # The runtime parameters: KFP's pipeline root only. Every other setting is fixed at compile
  # time (paths derive from the data root; see docs/kubeflow.md), so none is left open.
  assert job['runtimeConfig'] == {'gcsOutputDirectory': ROOT}
  assert not spec.root.input_definitions.parameters
  assert not job['pipelineSpec']['root'].get('inputDefinitions')


def test_the_parameters_point_at_the_data_root_the_serving_dir_and_the_installed_code(compiled):
  _, _, spec = compiled
  tasks = spec.root.dag.tasks

  def parameter(task, name):
    return tasks[task].inputs.parameters[name].runtime_value.constant_value.string_value

  assert parameter('CsvExampleGen', 'input_base') == f'{ROOT}/data'
  assert parameter('Transform', 'preprocessing_fn') == 'components.transform.preprocessing.preprocessing_fn'
  layout = prepare_data.data_layout(f'{ROOT}/data', 'ml-100k')
  assert parameter('ImportSchemaGen', 'schema_file') == layout.schema_path
  for model in MODELS:
    assert parameter(f'Trainer_{model}', 'run_fn') == 'components.models.trainer.run_fn'
    config = json.loads(parameter(f'Trainer_{model}', 'custom_config'))
    assert config['model_name'] == model and config['catalogue_path'] == f'{ROOT}/data/movies.csv'
    assert config['rating_range'] == [1.0, 5.0]
    push = json.loads(parameter(f'Pusher_{model}', 'push_destination'))
    assert push['filesystem']['base_directory'] == f'{ROOT}/serving/{model}'
    assert not tasks[f'Trainer_{model}'].inputs.parameters['module_file'].runtime_value.constant_value \
        .string_value


def test_yaml_output_and_model_flags(tmp_path):
  result, output = _compile(tmp_path, 'pipeline.yaml', '--models', 'collaborative_filtering',
                            '--epochs', '3', '--data-root', 'gs://other/data',
                            '--dataset', 'ml-latest')
  assert result.returncode == 0, result.stderr
  with open(output, encoding='utf-8') as f:
    spec = json_format.ParseDict(yaml.safe_load(f), pipeline_spec_pb2.PipelineSpec())
  tasks = spec.root.dag.tasks
  assert 'Trainer_collaborative_filtering' in tasks and 'Trainer_content_based' not in tasks
  config = json.loads(tasks['Trainer_collaborative_filtering'].inputs.parameters['custom_config']
                      .runtime_value.constant_value.string_value)
  assert config['hparams']['epochs'] == 3 and config['rating_range'] == [0.5, 5.0]
  assert config['catalogue_path'] == 'gs://other/data/movies.csv'


def test_bad_flags_are_clear_errors(tmp_path):
  result, _ = _compile(tmp_path, 'p.json', '--set', 'collaborative_filtering.nope=1')
  assert result.returncode == 2
  assert "collaborative_filtering has no hyperparameter 'nope'" in result.stderr
  assert 'Traceback' not in result.stderr
  result, _ = _compile(tmp_path, 'p.json', '--submit')
  assert result.returncode == 2 and '--submit and --schedule need --host' in result.stderr


class _KfpApi(http.server.BaseHTTPRequestHandler):
  """Answers the KFP v2beta1 REST calls the kfp client makes, and records them."""
  calls = []
  refuse_runs = False  # answer run creation with 403, as a KFP API would a missing permission

  def _answer(self):
    length = int(self.headers.get('Content-Length') or 0)
    body = json.loads(self.rfile.read(length)) if length else None
    self.calls.append((self.command, self.path, body))
    path = self.path.split('?')[0]
    answers = {
        ('GET', '/apis/v2beta1/healthz'): {'multi_user': False},
        ('GET', '/apis/v2beta1/experiments'): {},  # no experiment of that name yet
        ('POST', '/apis/v2beta1/experiments'): {'experiment_id': 'exp-1'},
        ('POST', '/apis/v2beta1/runs'): {'run_id': 'run-1'},
        ('POST', '/apis/v2beta1/recurringruns'): {'recurring_run_id': 'rr-1'},
    }
    answer = answers.get((self.command, path))
    status = 200 if answer is not None else 404
    if self.refuse_runs and path == '/apis/v2beta1/runs':
      answer, status = {'error': 'user is not allowed to create runs in this namespace'}, 403
    data = json.dumps(answer if answer is not None else {'error': 'no such API'}).encode()
    self.send_response(status)
    self.send_header('Content-Type', 'application/json')
    self.send_header('Content-Length', str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  do_GET = do_POST = _answer

  def log_message(self, *args):
    pass


@pytest.fixture()
def kfp_api():
  _KfpApi.calls, _KfpApi.refuse_runs = [], False
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _KfpApi)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  yield f'http://127.0.0.1:{server.server_address[1]}', _KfpApi.calls
  server.shutdown()


def test_submit_creates_the_experiment_and_a_run_of_the_compiled_spec(compiled, kfp_api):
  output, job, _ = compiled
  host, calls = kfp_api
  line = kfp_client.submit(host, str(output), 'movielens', 'nightly-retrain')
  assert 'run-1' in line
  posts = {path: body for method, path, body in calls if method == 'POST'}
  assert posts['/apis/v2beta1/experiments']['display_name'] == 'movielens'
  run = posts['/apis/v2beta1/runs']
  assert run['experiment_id'] == 'exp-1' and run['display_name'] == 'nightly-retrain'
  assert run['pipeline_spec'] == job['pipelineSpec']  # the compiled spec, as compiled


def test_schedule_creates_a_recurring_run_without_catch_up(compiled, kfp_api):
  output, job, _ = compiled
  host, calls = kfp_api
  line = kfp_client.schedule(host, str(output), 'movielens', 'nightly', '0 0 3 * * *')
  assert 'rr-1' in line
  recurring = next(body for method, path, body in calls
                   if method == 'POST' and path == '/apis/v2beta1/recurringruns')
  assert recurring['display_name'] == 'nightly' and recurring['experiment_id'] == 'exp-1'
  assert recurring['trigger']['cron_schedule']['cron'] == '0 0 3 * * *'
  assert int(recurring['max_concurrency']) == 1 and recurring['no_catchup'] is True
  assert recurring['mode'] == 'ENABLE'
  assert recurring['pipeline_spec']['pipelineInfo']['name'] == job['pipelineSpec'][
      'pipelineInfo']['name']


def test_api_errors_are_clear(compiled, kfp_api, tmp_path):
  output, _, _ = compiled
  host, _ = kfp_api
  _KfpApi.refuse_runs = True
  with pytest.raises(kfp_client.KfpError) as error:
    kfp_client.submit(host, str(output), 'movielens', 'run')
  assert 'answered HTTP 403 (the account may not use this namespace or experiment)' in str(
      error.value) and 'not allowed to create runs' in str(error.value)
  result, _ = _compile(tmp_path, 'p.json', '--submit', '--host', 'http://127.0.0.1:1')
  assert result.returncode == 1, result.stderr
  assert 'cannot reach the KFP API at http://127.0.0.1:1' in result.stderr
  assert 'Traceback' not in result.stderr


def test_prepare_data_writes_the_layout_the_compiled_pipeline_reads(tmp_path):
  if not os.path.isfile(os.path.join(ML_100K_DIR, 'u.data')):
    pytest.skip(f'the real MovieLens 100K folder is not at {ML_100K_DIR}')
  root = str(tmp_path / 'data')
  result = subprocess.run([sys.executable, '-m', 'pipeline.prepare_data', '--data-root', root,
                           '--data-dir', ML_100K_DIR, '--sample', '2000'], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  layout = prepare_data.data_layout(root, 'ml-100k')
  for path in (os.path.join(layout.input_base, 'train', ingestion.EXAMPLES_FILE),
               os.path.join(layout.input_base, 'eval', ingestion.EXAMPLES_FILE),
               layout.catalogue_path, layout.schema_path,
               os.path.join(root, ingestion.INFO_FILE)):
    assert os.path.isfile(path), path
  with open(os.path.join(root, ingestion.INFO_FILE), encoding='utf-8') as f:
    info = json.load(f)
  assert info['num_ratings'] == {'train': 1600, 'eval': 400}
  assert not [name for name in os.listdir(root) if name.startswith('.')]  # nothing half-written
  bad = subprocess.run([sys.executable, '-m', 'pipeline.prepare_data', '--data-root', root,
                        '--data-dir', str(tmp_path / 'nope')], cwd=PROJECT_DIR,
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2 and 'Traceback' not in bad.stderr and 'nope' in bad.stderr
  (tmp_path / 'a_file').write_text('not a folder')
  unwritable = subprocess.run([sys.executable, '-m', 'pipeline.prepare_data', '--data-root',
                               str(tmp_path / 'a_file' / 'data'), '--data-dir', ML_100K_DIR,
                               '--sample', '2000'], cwd=PROJECT_DIR, capture_output=True,
                              text=True, timeout=300)
  assert unwritable.returncode == 2 and 'Traceback' not in unwritable.stderr
  assert 'a_file' in unwritable.stderr and 'not a directory' in unwritable.stderr.lower()


def _signatures(summary, name):
  model = next(m for m in summary['models'] if m['name'] == name)
  loaded = tf.saved_model.load(model['pushed_version_path'])
  return {key: (sorted((k, s.dtype.name, s.shape.as_list()) for k, s in
                       function.structured_input_signature[1].items()),
                sorted((k, s.dtype.name) for k, s in function.structured_outputs.items()))
          for key, function in loaded.signatures.items()}


def test_multi_processing_direct_runner_pushes_the_same_signatures(finished_run, tmp_path):
  _, _, _, summary = finished_run
  result, multi = run_pipeline(ML_100K_DIR, str(tmp_path / 'run'),
                               '--beam-arg=--direct_running_mode=multi_processing',
                               '--beam-arg=--direct_num_workers=2')
  assert result.returncode == 0, result.stdout + result.stderr
  assert multi['data']['num_ratings'] == summary['data']['num_ratings']
  for name in MODELS:
    assert _signatures(multi, name) == _signatures(summary, name)


def test_the_image_is_built_from_our_tfx_version_with_every_package():
  import setuptools  # pylint: disable=import-outside-toplevel
  import tfx  # pylint: disable=import-outside-toplevel
  with open(os.path.join(PROJECT_DIR, 'Dockerfile'), encoding='utf-8') as f:
    lines = [line.split() for line in f if line.strip() and not line.startswith('#')]
  assert ['FROM', f'tensorflow/tfx:{tfx.__version__}'] in lines
  copied = {line[1] for line in lines if line[0] == 'COPY'}
  packages = {name.split('.')[0] for name in setuptools.find_packages(
      PROJECT_DIR, include=['components', 'pipeline', 'serving'])}
  assert packages <= copied and {'schema', 'requirements.lock', 'setup.py'} <= copied
  assert ['ENV', 'TF_USE_LEGACY_KERAS=1', '\\'] in lines


def test_a_span_pipeline_reads_the_latest_span_under_the_data_root(tmp_path):
  result, output = _compile(tmp_path, 'p.json', '--span', 'month')
  assert result.returncode == 0, result.stderr
  with open(output, encoding='utf-8') as f:
    spec = json_format.ParseDict(json.load(f)['pipelineSpec'], pipeline_spec_pb2.PipelineSpec())
  parameters = spec.root.dag.tasks['CsvExampleGen'].inputs.parameters
  value = lambda name: parameters[name].runtime_value.constant_value.string_value
  assert parameters['input_base'].runtime_value.constant_value.string_value == f'{ROOT}/data'
  splits = {s['name']: s['pattern'] for s in json.loads(value('input_config'))['splits']}
  assert splits == {'train': 'span-{SPAN}/train/*.csv', 'eval': 'span-{SPAN}/eval/*.csv'}
  # No range: each recurring run reads the newest span the data job has written.
  assert 'range_config' not in parameters or not value('range_config')


def test_warm_start_compiles_the_served_model_into_the_trainers_base_model(tmp_path):
  result, output = _compile(tmp_path, 'p.json', '--span', 'month', '--warm-start')
  assert result.returncode == 0, result.stderr
  with open(output, encoding='utf-8') as f:
    spec = json_format.ParseDict(json.load(f)['pipelineSpec'], pipeline_spec_pb2.PipelineSpec())
  tasks = spec.root.dag.tasks
  for model in MODELS:
    trainer = tasks[f'Trainer_{model}']
    # TFX's LatestBlessedModelStrategy, which KFP v2 compiles into metadata queries.
    assert any(d.startswith(f'WarmStartModel_{model}') for d in trainer.dependent_tasks)
    base = trainer.inputs.artifacts['base_model'].task_output_artifact.producer_task
    assert base.startswith(f'WarmStartModel_{model}')
