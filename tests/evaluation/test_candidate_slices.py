"""The Evaluator's slice keys come from the candidate's features only, computed by TFMA's own
slice-key DoFn: equal to TFMA's for one model, and for a candidate with a baseline, the
candidate's slices without the baseline's."""

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import slice_key_extractor
from tensorflow_model_analysis.slicer import slicer_lib as slicer

from components.evaluation import candidate_slices
from components.evaluation import slicing

SPECS = [tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=['gender']),
         tfma.SlicingSpec(feature_keys=[slicing.USER_ACTIVITY])]
SLICE_SPEC = [slicer.SingleSliceSpec(spec=spec) for spec in SPECS]


def _config(*names):
  return tfma.utils.update_eval_config_with_defaults(
      tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key='rating')], slicing_specs=SPECS),
      has_baseline=len(names) > 1, rubber_stamp=True)


def _slices(fn, element):
  [extract] = fn.process(element, SLICE_SPEC)
  return extract, sorted(slicer.stringify_slice_key(key)
                         for key in extract[constants.SLICE_KEY_TYPES_KEY])


def _features(activity):
  return {slicing.USER_ACTIVITY: np.array([activity.encode()])}


RAW = {constants.FEATURES_KEY: {'gender': np.array([b'M'])}}


def test_one_model_gets_tfmas_own_slice_keys():
  config = _config('candidate')
  element = dict(RAW, **{constants.TRANSFORMED_FEATURES_KEY: _features('cold (0)')})
  _, ours = _slices(candidate_slices.CandidateSliceKeysFn(config, False), element)
  _, tfmas = _slices(slice_key_extractor.ExtractSliceKeysFn(config, False), element)
  assert ours == tfmas == ['Overall', 'gender:M', 'user_activity:cold (0)']


def test_with_a_baseline_only_the_candidates_features_slice():
  config = _config('candidate', 'baseline')
  names = {spec.name: spec.is_baseline for spec in config.model_specs}
  candidate = next(name for name, is_baseline in names.items() if not is_baseline)
  baseline = next(name for name, is_baseline in names.items() if is_baseline)
  transformed = {candidate: _features('cold (0)'), baseline: _features('light (1-49)')}
  element = dict(RAW, **{constants.TRANSFORMED_FEATURES_KEY: transformed})
  # TFMA's own: the union of both models' slices, the rating in two activity buckets.
  _, tfmas = _slices(slice_key_extractor.ExtractSliceKeysFn(config, False), element)
  assert tfmas == ['Overall', 'gender:M', 'user_activity:cold (0)',
                   'user_activity:light (1-49)']
  extract, ours = _slices(candidate_slices.CandidateSliceKeysFn(config, False), element)
  assert ours == ['Overall', 'gender:M', 'user_activity:cold (0)']
  # Both models' transformed features go on to the metrics (the baseline's lists are there).
  assert extract[constants.TRANSFORMED_FEATURES_KEY] is transformed
  assert element[constants.TRANSFORMED_FEATURES_KEY] is transformed  # the input is not changed


def test_the_extractor_keeps_tfmas_stage_name():
  extractor = candidate_slices.candidate_slice_key_extractor(_config('candidate', 'baseline'))
  assert extractor.stage_name == slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME
