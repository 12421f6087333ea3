"""Submitting and scheduling the compiled pipeline on a Kubeflow Pipelines API, with the `kfp` client.

Both take the file kubeflow_runner.py wrote: the YAML pipeline spec, or TFX's JSON PipelineJob
(whose `pipelineSpec` is what KFP's API takes). Failures of the API (unreachable, refused
credentials, a 4xx or 5xx answer) become a KfpError whose message says what to check.
"""

import json
import logging
import os
import tempfile
import warnings
from typing import Optional

import yaml


class KfpError(Exception):
  """The KFP API could not be reached or refused the request."""


def _client(host: str):
  import kfp  # pylint: disable=import-outside-toplevel
  logging.getLogger('urllib3.connectionpool').setLevel(logging.ERROR)  # a line per retry
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
    return kfp.Client(host=host)


def _pipeline_spec_file(path: str, folder: str) -> str:
  """A YAML file holding only the pipeline spec of `path` (which kfp's client reads)."""
  if path.endswith(('.yaml', '.yml')):
    return path
  with open(path, encoding='utf-8') as f:
    job = json.load(f)
  spec_path = os.path.join(folder, 'pipeline.yaml')
  with open(spec_path, 'w', encoding='utf-8') as f:
    yaml.safe_dump(job.get('pipelineSpec', job), f, sort_keys=True)
  return spec_path


def _explained(host: str, error: Exception) -> KfpError:
  status = getattr(error, 'status', None)
  if status is not None:  # kfp_server_api.ApiException: the API answered with an error
    reason = (getattr(error, 'body', None) or getattr(error, 'reason', '') or '').strip()
    hint = {401: ' (check the credentials: KF_PIPELINES_* variables or a token)',
            403: ' (the account may not use this namespace or experiment)',
            404: ' (is --host the KFP API endpoint, e.g. http://HOST:8080?)'}.get(status, '')
    return KfpError(f'the KFP API at {host} answered HTTP {status}{hint}: {reason[:500]}')
  return KfpError(f'cannot reach the KFP API at {host} ({type(error).__name__}: '
                  f'{str(error).splitlines()[0][:300] if str(error) else ""}); is --host right '
                  'and is the endpoint port-forwarded or exposed?')


def _api_errors():
  import kfp_server_api  # pylint: disable=import-outside-toplevel
  import urllib3  # pylint: disable=import-outside-toplevel
  return (kfp_server_api.ApiException, urllib3.exceptions.HTTPError, OSError)


def _experiment_id(client, name: str) -> str:
  return client.create_experiment(name).experiment_id  # returns the existing one if there is


def submit(host: str, path: str, experiment: str, run_name: str) -> str:
  """Starts a run of the compiled pipeline; returns a line naming it."""
  try:
    client = _client(host)
    with tempfile.TemporaryDirectory() as folder:
      result = client.create_run_from_pipeline_package(
          _pipeline_spec_file(path, folder), arguments={}, run_name=run_name,
          experiment_name=experiment)
  except _api_errors() as e:
    raise _explained(host, e) from None
  return f'Submitted run {result.run_id} ({run_name}) in experiment "{experiment}" on {host}'


def schedule(host: str, path: str, experiment: str, name: str, cron: str,
             max_concurrency: int = 1, catch_up: bool = False,
             description: Optional[str] = None) -> str:
  """Creates a recurring run of the compiled pipeline; returns a line naming it."""
  try:
    client = _client(host)
    with tempfile.TemporaryDirectory() as folder:
      job = client.create_recurring_run(
          experiment_id=_experiment_id(client, experiment), job_name=name,
          description=description, cron_expression=cron, max_concurrency=max_concurrency,
          no_catchup=not catch_up, pipeline_package_path=_pipeline_spec_file(path, folder))
  except _api_errors() as e:
    raise _explained(host, e) from None
  return (f'Scheduled recurring run {job.recurring_run_id} ({name}, cron "{cron}", at most '
          f'{max_concurrency} at a time, no catch-up) in experiment "{experiment}" on {host}')
