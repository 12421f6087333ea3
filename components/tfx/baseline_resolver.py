"""The latest blessed model of the same name, other than the candidate's run or data: the
Evaluator's baseline for blessing, and the Trainer's base model for a warm start.

Stock LatestBlessedModelStrategy runs before the Trainer, so on an unchanged re-run the cached
candidate is itself the latest blessed model: the Evaluator would then compare the model with
itself, miss the cache, and the Pusher would push the same model again as a new version. Seeing
the candidate lets this strategy skip it, so an unchanged re-run is fully cached and a retrained
model is compared with the one blessed before it.

The candidate arrives as the Trainer's `model_run` output (a second channel on the Trainer's
`model` output would collide with the `model` query in TFX's input graph); the models to skip
are the outputs of the execution that produced it, looked up in ML Metadata.

A warm start (pipeline settings' `warm_start`) has the same problem before the Trainer: on an
unchanged re-run the latest blessed model is the one trained on this very data, so the Trainer
would miss its cache and train that model on for more steps. LatestBlessedEarlierModelStrategy
skips the models of every execution that read the Trainer's own `training_examples`
(Transform's output, the same artifact when Transform is cached), so the base model is the one
the cached Trainer started from, and the re-run is fully cached.
"""

from typing import Dict, List, Optional, Set

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy

CANDIDATE_RUN = 'candidate_run'
TRAINING_EXAMPLES = 'training_examples'
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)


def _outputs_of_executions_with(store, artifacts: List[types.Artifact], events) -> Set[int]:
  """Ids of every output of the executions that have one of `artifacts` as an event of a type
  in `events` (as output: the executions that produced them; as input: those that read them)."""
  if not artifacts:
    return set()
  found = store.get_events_by_artifact_ids([a.id for a in artifacts])
  executions = {e.execution_id for e in found if e.type in events}
  return {e.artifact_id for e in store.get_events_by_execution_ids(list(executions))
          if e.type in _OUTPUT_EVENTS}


class _LatestBlessedModelExcept(latest_blessed_model_strategy.LatestBlessedModelStrategy):
  """The latest blessed model among those not excluded by the `key` input's artifacts, which
  are passed through."""
  key: str = ''
  events = _OUTPUT_EVENTS

  def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                        ) -> Optional[Dict[str, List[types.Artifact]]]:
    inputs = dict(input_dict)
    passed = inputs.pop(self.key, [])
    excluded = _outputs_of_executions_with(store, passed, self.events)
    inputs['model'] = [m for m in inputs.get('model', []) if m.id not in excluded]
    result = super().resolve_artifacts(store, inputs)
    if result is None:
      return None
    result[self.key] = passed
    return result


class LatestBlessedPreviousModelStrategy(_LatestBlessedModelExcept):
  """Inputs `model`, `model_blessing` and `candidate_run`; outputs the baseline model, its
  blessing, and the candidate run passed through."""
  key = CANDIDATE_RUN


class LatestBlessedEarlierModelStrategy(_LatestBlessedModelExcept):
  """Inputs `model`, `model_blessing` and `training_examples`; outputs the latest blessed model
  not trained on those examples, its blessing, and the examples passed through."""
  key = TRAINING_EXAMPLES
  events = _INPUT_EVENTS
