"""The models a server answers with: loaded from the Pusher's folders, swapped in as they appear.

Mirrors what `tensorflow_model_server` does with a ModelServerConfig:
- each model's `base_path` holds numeric version folders; the version policy (`latest` N,
  default 1; `all`; `specific`) says which to serve, and `version_labels` name versions;
- a poll (every `poll_seconds`) loads a new version, replays its warm-up requests
  (`assets.extra/tf_serving_warmup_requests`), and only then makes it available; a version that
  leaves the policy is dropped once another one is available (TF Serving's
  availability-preserving policy), so requests never find no version;
- a version that fails to load (e.g. still being copied) is retried on the next polls, and the
  last error is reported in the model status.
Requests take a reference to one loaded version and keep it to the end, so swapping versions
never fails a request in flight.
"""

import dataclasses
import gc
import logging
import os
import threading
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.config import model_server_config_pb2

from components.export import warmup
from serving.model_config import read_config, version_folders
from serving.status import Code, ServingError, from_tf_error, invalid, not_found

REGRESS_METHOD = tf.saved_model.REGRESS_METHOD_NAME  # 'tensorflow/serving/regress'
MAX_LOAD_ATTEMPTS = 5
AVAILABLE, LOADING, END = 'AVAILABLE', 'LOADING', 'END'
_log = logging.getLogger('serving')


def _settle_heap() -> None:
  """Collects what loads and unloads left behind, then freezes the heap (gc.freeze).

  A loaded model leaves half a million Python objects (TensorFlow's graphs and functions); a
  full collection scans them all (0.4 s measured here), stalling every request when Python
  decides to run one. Frozen objects are never scanned, so requests only pay for their own
  garbage; the one full collection runs here, after a version was loaded or dropped.
  """
  gc.unfreeze()
  gc.collect()
  gc.freeze()


def _wanted(versions: Sequence[int], policy) -> List[int]:
  choice = policy.WhichOneof('policy_choice')
  if choice == 'all':
    return list(versions)
  if choice == 'specific':
    return [v for v in versions if v in set(policy.specific.versions)]
  return list(versions)[-max(policy.latest.num_versions, 1):]


class Servable:
  """One loaded version of one model: its SignatureDefs and a way to run them."""

  def __init__(self, name: str, version: int, path: str):
    self.name, self.version, self.path = name, version, path
    with open(os.path.join(path, 'saved_model.pb'), 'rb') as f:
      meta_graph = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0]
    self.signature_defs: Dict[str, meta_graph_pb2.SignatureDef] = dict(meta_graph.signature_def)
    self.tensorflow_version = meta_graph.meta_info_def.tensorflow_version
    self._loaded = tf.saved_model.load(path)  # the way TF Serving loads it: graph + variables
    self._functions = dict(self._loaded.signatures)
    # Per signature and input: (dtype enum, tf dtype, dims or None), read once, not per request.
    self._inputs = {
        name: {key: (info.dtype, tf.dtypes.as_dtype(info.dtype),
                     None if info.tensor_shape.unknown_rank
                     else [d.size for d in info.tensor_shape.dim])
               for key, info in sig.inputs.items()}
        for name, sig in self.signature_defs.items()}

  def signature(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
    name = signature_name or 'serving_default'
    if name not in self.signature_defs or name not in self._functions:
      raise ServingError(Code.FAILED_PRECONDITION,
                         f'Serving signature name: "{name}" not found in signature def; '
                         f'this model has {sorted(self._functions)}')
    return self.signature_defs[name]

  def input_dtypes(self, signature_name: str) -> Dict[str, int]:
    self.signature(signature_name)
    return {key: spec[0] for key, spec in self._inputs[signature_name or 'serving_default'].items()}

  def run(self, signature_name: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Runs a signature on named arrays (already of the signature's dtypes)."""
    self.signature(signature_name)
    specs = self._inputs[signature_name or 'serving_default']
    if inputs.keys() != specs.keys():
      unknown, missing = sorted(set(inputs) - set(specs)), sorted(set(specs) - set(inputs))
      raise invalid(f'the signature "{signature_name or "serving_default"}" takes the inputs '
                    f'{sorted(specs)}' + (f'; unknown: {unknown}' if unknown else '')
                    + (f'; missing: {missing}' if missing else ''))
    tensors = {}
    for key, array in inputs.items():
      _, dtype, dims = specs[key]
      if dims is not None and (array.ndim != len(dims) or any(
          d >= 0 and d != n for d, n in zip(dims, array.shape))):
        raise invalid(f'input "{key}" has shape {list(array.shape)}; the signature wants '
                      f'{dims} (-1: any size)')
      tensors[key] = tf.constant(array, dtype=dtype)
    try:
      outputs = self._functions[signature_name or 'serving_default'](**tensors)
    except tf.errors.OpError as e:
      raise from_tf_error(e) from None
    except UnicodeDecodeError:  # TensorFlow's message quotes binary input it could not use
      raise invalid(f'the signature "{signature_name or "serving_default"}" could not use an '
                    'input (e.g. a serialized tf.Example that does not parse)') from None
    except (TypeError, ValueError) as e:
      raise invalid(str(e).split('\n')[0]) from None
    return {key: value.numpy() for key, value in outputs.items()}

  def regress(self, signature_name: str, examples: List[tf.train.Example]) -> np.ndarray:
    """TF Serving's Regress: a regression signature on serialized tf.Examples -> [B] floats."""
    signature = self.signature(signature_name)
    if signature.method_name != REGRESS_METHOD:
      raise invalid(f'Expected regression signature method_name to be {REGRESS_METHOD}. Was: '
                    f'{signature.method_name} (this model\'s regression signature is "regress")')
    (key,) = signature.inputs
    serialized = np.array([e.SerializeToString() for e in examples], dtype=object)
    output = self.run(signature_name, {key: serialized})['outputs']
    return output.reshape(len(examples))

  def warm_up(self) -> int:
    """Replays the export's warm-up requests, as TF Serving does before serving a version."""
    logs = warmup.read(self.path)
    for log in logs:
      if log.HasField('regress_log'):
        request = log.regress_log.request
        self.regress(request.model_spec.signature_name,
                     list(request.input.example_list.examples))
      elif log.HasField('predict_log'):
        request = log.predict_log.request
        self.run(request.model_spec.signature_name,
                 {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
    return len(logs)


@dataclasses.dataclass
class VersionState:
  state: str
  error: str = ''
  attempts: int = 0


class ModelStore:
  """The served versions of every configured model, kept current by a polling thread."""

  def __init__(self, config: model_server_config_pb2.ModelServerConfig,
               poll_seconds: float = 1.0, config_path: Optional[str] = None,
               config_poll_seconds: float = 0.0):
    self._config_path, self._config_mtime = config_path, None
    self._config_poll_seconds = config_poll_seconds
    self._set_config(config)
    self._poll_seconds = poll_seconds
    self._available: Dict[str, Dict[int, Servable]] = {}
    self._states: Dict[str, Dict[int, VersionState]] = {}
    self._lock = threading.Lock()  # writers only: readers take the current dict as it is
    self._stop = threading.Event()
    self._thread = None
    self.batcher = None  # a serving.batching.Batcher merges concurrent calls when set

  def _set_config(self, config):
    self._models = {m.name: m for m in config.model_config_list.config}
    self._config = config

  @property
  def model_names(self) -> List[str]:
    return list(self._models)

  def start(self) -> None:
    """Loads what is there now, then keeps polling in a background thread."""
    if self._config_path:
      self._config_mtime = os.path.getmtime(self._config_path)
    self.poll()
    self._thread = threading.Thread(target=self._run, name='model-store-poll', daemon=True)
    self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread:
      self._thread.join()

  def _run(self):
    last_config_check = time.monotonic()
    while not self._stop.wait(self._poll_seconds):
      try:
        if (self._config_path and self._config_poll_seconds > 0
            and time.monotonic() - last_config_check >= self._config_poll_seconds):
          last_config_check = time.monotonic()
          self._reload_config()
        self.poll()
      except Exception:  # the poll thread must survive anything a folder can do to it
        _log.exception('polling the model folders failed; retrying')

  def _reload_config(self):
    mtime = os.path.getmtime(self._config_path)
    if mtime != self._config_mtime:
      self._config_mtime = mtime
      try:
        self._set_config(read_config(self._config_path))
        _log.info('reloaded %s: models %s', self._config_path, self.model_names)
      except ValueError as e:
        _log.error('%s (keeping the previous config)', e)

  def poll(self) -> None:
    """One pass: load versions the policy wants, then drop those it no longer wants."""
    changed = self._poll_models()
    if changed:
      _settle_heap()

  def _poll_models(self) -> bool:
    changed = False
    for name, model in list(self._models.items()):
      on_disk = [v for v in version_folders(model.base_path)
                 if os.path.isfile(os.path.join(model.base_path, str(v), 'saved_model.pb'))]
      wanted = _wanted(on_disk, model.model_version_policy)
      states = self._states.setdefault(name, {})
      for version in wanted:
        if version in self._available.get(name, {}):
          continue
        state = states.setdefault(version, VersionState(LOADING))
        if state.state == END or state.attempts >= MAX_LOAD_ATTEMPTS:
          continue
        self._load(name, version, os.path.join(model.base_path, str(version)), state)
        changed = True
      available = self._available.get(name, {})
      if any(v in available for v in wanted):
        for version in [v for v in available if v not in wanted]:
          self._publish(name, version, None)
          states[version] = VersionState(END)
          changed = True
          _log.info('%s version %d unloaded (no longer in the version policy)', name, version)
    for name in [n for n in self._available if n not in self._models]:
      with self._lock:
        self._available = {k: v for k, v in self._available.items() if k != name}
      changed = True
      _log.info('%s unloaded (no longer in the model config)', name)
    return changed

  def _load(self, name: str, version: int, path: str, state: VersionState) -> None:
    state.attempts += 1
    started = time.monotonic()
    try:
      servable = Servable(name, version, path)
      requests = servable.warm_up()
    except Exception as e:  # a half-copied folder, a corrupt file, a failing warm-up request
      state.error = f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
      if state.attempts >= MAX_LOAD_ATTEMPTS:
        state.state = END
      _log.warning('%s version %d failed to load (attempt %d of %d): %s', name, version,
                   state.attempts, MAX_LOAD_ATTEMPTS, state.error)
      return
    self._publish(name, version, servable)
    state.state, state.error = AVAILABLE, ''
    _log.info('%s version %d available (%.1f s, %d warm-up requests) from %s', name, version,
              time.monotonic() - started, requests, path)

  def _publish(self, name: str, version: int, servable: Optional[Servable]) -> None:
    """Copy-on-write: a reader sees the old dict or the new one, never a half-updated one."""
    with self._lock:
      versions = dict(self._available.get(name, {}))
      if servable is None:
        versions.pop(version, None)
      else:
        versions[version] = servable
      self._available = {**self._available, name: versions}

  def get(self, name: str, version: Optional[int] = None, label: Optional[str] = None
          ) -> Servable:
    """The servable a request names (latest available version by default)."""
    available = self._available.get(name, {})
    if label is not None:
      model = self._models.get(name)
      if model is None or label not in model.version_labels:
        raise invalid(f'Unrecognized servable version label: {label}')
      version = model.version_labels[label]
    if version is None:
      if not available:
        raise not_found(f'Servable not found for request: Latest({name})')
      return available[max(available)]
    if version not in available:
      raise not_found(f'Servable not found for request: Specific({name}, {version})')
    return available[version]

  def available_versions(self, name: str) -> List[int]:
    return sorted(self._available.get(name, {}))

  def status(self, name: str, version: Optional[int] = None) -> List[tuple]:
    """(version, state, error message) of a model's versions, as GetModelStatus reports them."""
    if name not in self._models:
      raise not_found(f'Could not find any versions of model {name}')
    states = self._states.get(name, {})
    if version is not None:
      if version not in states:
        raise not_found(f'Could not find version {version} of model {name}')
      states = {version: states[version]}
    if not states:
      raise not_found(f'Could not find any versions of model {name}')
    return [(v, s.state, s.error) for v, s in sorted(states.items())]
