"""The process environment TFX needs, set on import: every entry point imports this module first.

- `TF_USE_LEGACY_KERAS=1`: TFX, Transform and TFMA need Keras 2, so `tf.keras` must be `tf_keras`.
  TensorFlow reads the variable once, when it is first imported, so this comes before it.
- `TF_CPP_MIN_LOG_LEVEL=2`: TensorFlow's C++ INFO and WARNING lines stay out of the terminal.
- google-api-core's FutureWarning that Python 3.10 support is ending (TFX 1.16 needs 3.10).

Values already set in the environment win.
"""

import os
import warnings

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
warnings.filterwarnings('ignore', category=FutureWarning, module=r'google\.')
