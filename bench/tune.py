"""Chooses training epochs on validation data carved from the training data, never a test fold.

    python -m bench.tune [--epochs 15]

Takes the seeded random 80/20 split of ML-100K (the pipeline's default), holds out 10% of its
*training* part (seed 0) as validation, trains each model with the settings of
pipeline/configs.py for up to --epochs epochs and prints the validation RMSE after each epoch
and the best epoch. The epoch counts in pipeline/configs.py come from this script.
"""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

from bench import quality  # noqa: E402
from components import movielens_formats as formats  # noqa: E402
from components import movielens_splits as splits  # noqa: E402
from components.model_names import MODEL_NAMES  # noqa: E402


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', default=quality.DEFAULT_DATA)
  parser.add_argument('--epochs', type=int, default=15)
  parser.add_argument('--models', nargs='+', default=list(MODEL_NAMES), choices=MODEL_NAMES)
  args = parser.parse_args(argv)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from components import trainer  # pylint: disable=import-outside-toplevel
  from pipeline import configs  # pylint: disable=import-outside-toplevel

  data = formats.read_movielens(args.data_dir)
  is_test = splits.eval_mask(data, data.ratings, splits.RANDOM, 0.2, seed=42)
  train_part = data.ratings.take(~is_test)
  is_validation = np.zeros(len(train_part), dtype=bool)
  is_validation[np.random.default_rng(0).permutation(len(train_part))[:len(train_part) // 10]] = True
  fit, validation = train_part.take(~is_validation), train_part.take(is_validation)

  class ValidationRmse(tf.keras.callbacks.Callback):
    def __init__(self, examples):
      super().__init__()
      self.examples, self.history = examples, []

    def on_epoch_end(self, epoch, logs=None):
      predicted = self.model.predict(self.examples.features, batch_size=8192, verbose=0)
      self.history.append(quality.scores(predicted, self.examples.labels)['rmse'])

  results = {}
  with tempfile.TemporaryDirectory() as temp_dir:
    tft_output = quality.analyze(quality.raw_columns(data, fit), temp_dir)
    fit_examples = quality.transform(tft_output, quality.raw_columns(data, fit))
    validation_examples = quality.transform(tft_output, quality.raw_columns(data, validation))
    for name in args.models:
      hparams = dict(configs.default_hparams()[name], epochs=args.epochs)
      watcher = ValidationRmse(validation_examples)
      trainer.fit_model(name, tft_output, hparams, fit_examples, callbacks=[watcher])
      best = int(np.argmin(watcher.history))
      results[name] = {'validation_rmse_by_epoch': [round(v, 4) for v in watcher.history],
                       'best_epoch': best + 1, 'best_validation_rmse': round(watcher.history[best], 4)}
      print(json.dumps({name: results[name]}), flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
