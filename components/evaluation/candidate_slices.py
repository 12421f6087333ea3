"""The Evaluator's extractors, with each rating sliced by the candidate model's features only.

TFMA's SliceKeyExtractor, when a candidate is evaluated against a baseline, slices a rating by
the slice features of both models' `transformed_features` signatures and keeps the union. The
slices that depend on a model's training data (components/evaluation/slicing.py:
`user_activity`, `movie_popularity`) then disagree: a user new to the candidate but known to a
baseline trained one span earlier lands in both `cold (0)` and `light`, and the candidate's and
the baseline's metrics for 'users new in this span' mix in users that are not new. The
candidate's features are the ones a slice is meant to describe (what the model being judged
was trained on), so both models' metrics are computed on the candidate's slices.

TFX's Evaluator calls `custom_extractors` of its `module_path`; this one returns TFMA's
default extractors with the slice-key step replaced by TFMA's own DoFn, shown only the
candidate's transformed features.
"""

import copy
from typing import List

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import slice_key_extractor
from tensorflow_model_analysis.slicer import slicer_lib as slicer

STAGE_NAME = slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME


class CandidateSliceKeysFn(slice_key_extractor.ExtractSliceKeysFn):
  """TFMA's slice-key DoFn, seeing the candidate's transformed features as if it were the only
  model; every other extract, the baseline's transformed features included, passes through."""

  def __init__(self, eval_config: tfma.EvalConfig, materialize: bool):
    candidates = [spec for spec in eval_config.model_specs if not spec.is_baseline]
    self._candidate = candidates[0].name if len(eval_config.model_specs) > 1 else None
    single = copy.deepcopy(eval_config)
    del single.model_specs[:]
    single.model_specs.append(candidates[0])
    super().__init__(single, materialize)

  def process(self, element, slice_spec):
    transformed = element.get(constants.TRANSFORMED_FEATURES_KEY)
    if self._candidate is None or transformed is None:  # one model: TFMA's own behaviour
      return super().process(element, slice_spec)
    view = copy.copy(element)
    view[constants.TRANSFORMED_FEATURES_KEY] = transformed.get(self._candidate)
    extracts = super().process(view, slice_spec)
    for extract in extracts:
      extract[constants.TRANSFORMED_FEATURES_KEY] = transformed
    return extracts


def candidate_slice_key_extractor(eval_config: tfma.EvalConfig,
                                  materialize: bool = False) -> tfma.extractors.Extractor:
  """TFMA's SliceKeyExtractor (same stage name, slice specs and output) on the candidate's
  features."""
  if eval_config.cross_slicing_specs:
    raise ValueError('cross slicing specs are not supported by the candidate slice extractor')
  specs = [slicer.SingleSliceSpec(spec=spec) for spec in eval_config.slicing_specs] or [
      slicer.SingleSliceSpec()]
  return tfma.extractors.Extractor(
      stage_name=STAGE_NAME,
      ptransform=beam.ParDo(CandidateSliceKeysFn(eval_config, materialize), slice_spec=specs))


def custom_extractors(eval_shared_model, eval_config, tensor_adapter_config) -> List:
  """The Evaluator's hook: TFMA's default extractors, slicing on the candidate's features."""
  extractors = tfma.default_extractors(eval_shared_model=eval_shared_model,
                                       eval_config=eval_config,
                                       tensor_adapter_config=tensor_adapter_config)
  return [candidate_slice_key_extractor(eval_config) if e.stage_name == STAGE_NAME else e
          for e in extractors]
