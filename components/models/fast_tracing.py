"""Tracing Keras code as plain Python: AutoGraph's skip list misses `tf_keras`.

AutoGraph rewrites Python control flow on tensors into graph ops while tracing. It leaves
TensorFlow's and Keras' own code alone by module name, but its list names `keras`, not
`tf_keras`, the Keras 2 package that TFX needs (TF_USE_LEGACY_KERAS=1). So every `fit` parsed and
rewrote Keras' training internals and each layer's `call` first (20-26 s of the first epoch on
ML-100K, measured with py-spy), and every `model.save` did it again for the Keras SavedModel
traces (11 s of a 19 s export). `skip_tf_keras()` adds the rule TensorFlow has for `keras`;
TensorFlow's own AutoGraph tests add rules the same way. Keras code is written to run
unconverted (as `keras` always does), and the models branch only on Python values, never on
tensors: training RMSE is the same to the last digit with and without it.
"""


def skip_tf_keras() -> None:
  """Tells AutoGraph not to convert `tf_keras` (idempotent; a no-op if TensorFlow's private
  AutoGraph configuration moves, which only costs tracing time)."""
  try:
    from tensorflow.python.autograph.core import config  # pylint: disable=import-outside-toplevel
  except ImportError:
    return
  rules = tuple(config.CONVERSION_RULES)
  if not any(isinstance(rule, config.DoNotConvert) and rule.matches('tf_keras')
             for rule in rules):
    config.CONVERSION_RULES = (config.DoNotConvert('tf_keras'),) + rules
