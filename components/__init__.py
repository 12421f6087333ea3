"""The code each pipeline step runs, by kind: `data` (ingestion, outside the DAG), `tfx` (the
project's TFX components and executors), `transform` (Transform's preprocessing_fn), `models`
(the two Keras models and the Trainer's run_fn), `export` (the serving signatures) and
`evaluation` (the Evaluator's config and TFMA metrics)."""
