"""The baseline for blessing: the latest blessed model of the same name, other than the candidate.

Stock LatestBlessedModelStrategy runs before the Trainer, so on an unchanged re-run the cached
candidate is itself the latest blessed model: the Evaluator would then compare the model with
itself, miss the cache, and the Pusher would push the same model again as a new version. Seeing
the candidate lets this strategy skip it, so an unchanged re-run is fully cached and a retrained
model is compared with the one blessed before it.

The candidate arrives as the Trainer's `model_run` output (a second channel on the Trainer's
`model` output would collide with the `model` query in TFX's input graph); the models to skip
are the outputs of the execution that produced it, looked up in ML Metadata.
"""

from typing import Dict, List, Optional, Set

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy

CANDIDATE_RUN = 'candidate_run'
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


def _sibling_outputs(store, artifacts: List[types.Artifact]) -> Set[int]:
  """Ids of every output of the executions that produced `artifacts`."""
  if not artifacts:
    return set()
  events = store.get_events_by_artifact_ids([a.id for a in artifacts])
  executions = {e.execution_id for e in events if e.type in _OUTPUT_EVENTS}
  return {e.artifact_id for e in store.get_events_by_execution_ids(list(executions))
          if e.type in _OUTPUT_EVENTS}


class LatestBlessedPreviousModelStrategy(latest_blessed_model_strategy.LatestBlessedModelStrategy):
  """Inputs `model`, `model_blessing` and `candidate_run`; outputs the baseline model, its
  blessing, and the candidate run passed through."""

  def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                        ) -> Optional[Dict[str, List[types.Artifact]]]:
    inputs = dict(input_dict)
    candidate_run = inputs.pop(CANDIDATE_RUN, [])
    excluded = _sibling_outputs(store, candidate_run)
    inputs['model'] = [m for m in inputs.get('model', []) if m.id not in excluded]
    result = super().resolve_artifacts(store, inputs)
    if result is None:
      return None
    result[CANDIDATE_RUN] = candidate_run
    return result
