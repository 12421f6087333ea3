"""`create_pipeline(...)`: the TFX DAG, independent of where it runs.

CsvExampleGen -> StatisticsGen -> ImportSchemaGen (curated) -> ExampleValidator -> AnomaliesGate
-> Transform -> per model: Trainer (with settings.warm_start, from the latest blessed model of that
name) -> Evaluator (baseline: the latest blessed model of that name other than the candidate)
-> Pusher (only when blessed).
"""

import hashlib
import os
from typing import Dict, Optional, Sequence, Tuple

from ml_metadata.proto import metadata_store_pb2
import tensorflow_data_validation as tfdv
# TFX's modules, not the `tfx.v1` facade: importing that also imports the Vertex AI extension
# and its google-cloud-aiplatform client (4 s of every run's start, unused here).
from tfx import components as tfx_components
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2
from tfx.proto import pusher_pb2
from tfx.proto import range_config_pb2
from tfx.proto import trainer_pb2
from tfx.proto import transform_pb2
from tfx.types import channel
from tfx.types import standard_artifacts

import components as components_package
from components.tfx import anomalies_gate
from components.tfx import atomic_pusher
from components.tfx import baseline_resolver
from components.tfx import batch_read_statistics_gen
from components.tfx import batch_io_transform
from components.evaluation import candidate_slices
from components.evaluation import eval_config as evaluation
from components.data import ingestion
from components.data import spans
from components.tfx import typed_csv_example_gen
from pipeline import configs


def node_ids(model_name: str) -> Dict[str, str]:
  """The component ids of one model's branch, for finding its results in ML Metadata."""
  return {'trainer': f'Trainer_{model_name}', 'resolver': f'LatestBlessedModel_{model_name}',
          'warm_start': f'WarmStartModel_{model_name}',
          'evaluator': f'Evaluator_{model_name}', 'pusher': f'Pusher_{model_name}'}


def code_fingerprint() -> str:
  """A digest of the component code the executors import (the `components` package, with its
  subpackages).

  Transform and the Trainers call installed functions (configs.PREPROCESSING_FN, RUN_FN)
  rather than TFX's module files, which TFX packages as a wheel at every run and pip-installs
  in each executor. TFX's cache keys on a component's properties, which then hold only the
  function's name: the digest, passed in their custom_config, makes a code change re-run them.
  """
  digest = hashlib.sha256()
  folder = os.path.dirname(os.path.abspath(components_package.__file__))
  paths = sorted(os.path.relpath(os.path.join(root, name), folder)
                 for root, _, names in os.walk(folder) for name in names if name.endswith('.py'))
  for path in paths:  # every module of every subpackage, by its path inside the package
    with open(os.path.join(folder, path), 'rb') as f:
      digest.update(path.encode() + b'\0' + f.read() + b'\0')
  return digest.hexdigest()[:16]


def input_config(data: ingestion.PreparedData) -> example_gen_pb2.Input:
  """CsvExampleGen's train and eval splits: `train/`, `eval/`, or with spans `span-{SPAN}/train/`
  and `span-{SPAN}/eval/` (the window before a span and the span; components/data/spans.py)."""
  pattern = spans.pattern if data.span_period else (lambda split: f'{split}/*.csv')
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name=split, pattern=pattern(split))
      for split in (ingestion.TRAIN, ingestion.EVAL)])


def range_config(data: ingestion.PreparedData) -> Optional[range_config_pb2.RangeConfig]:
  """With spans, the one span the run is for; None reads the latest span (a scheduled run)."""
  if not data.span_period or data.eval_span is None:
    return None
  return range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
      start_span_number=data.eval_span, end_span_number=data.eval_span))


def examples_and_statistics(settings: configs.PipelineSettings, data: ingestion.PreparedData,
                            statistics=batch_read_statistics_gen.StatisticsGen
                            ) -> Tuple[typed_csv_example_gen.CsvExampleGen,
                                       tfx_components.StatisticsGen]:
  """CsvExampleGen over the prepared splits, and StatisticsGen over its examples: of all of
  them, or of big data a random sample (settings.statistics_sample_ratings). `statistics`:
  this project's StatisticsGen, which reads in C++, or a test's stock one."""
  example_gen = typed_csv_example_gen.CsvExampleGen(
      input_base=data.input_base, input_config=input_config(data),
      range_config=range_config(data))
  sample_rate = settings.statistics_sample_rate(data.num_ratings)
  statistics_gen = statistics(
      examples=example_gen.outputs['examples'],
      stats_options=tfdv.StatsOptions(sample_rate=sample_rate) if sample_rate < 1 else None)
  return example_gen, statistics_gen


def transform_component(examples: channel.BaseChannel, schema: channel.BaseChannel, code: str,
                        component=batch_io_transform.Transform) -> tfx_components.Transform:
  """Transform of the training split by configs.PREPROCESSING_FN (`component`: this project's,
  whose examples are written in C++, or a test's stock Transform)."""
  # Only the training split is transformed: the Trainers read nothing else, and the Evaluators
  # read raw examples (the model applies Transform's graph itself). Transform's own TFDV
  # statistics of raw and transformed data are off: StatisticsGen already describes the raw
  # data and nothing reads them (they were most of Transform's time).
  return component(
      examples=examples,
      schema=schema,
      splits_config=transform_pb2.SplitsConfig(analyze=[ingestion.TRAIN],
                                           transform=[ingestion.TRAIN]),
      disable_statistics=True,
      # Each run analyses its whole training split; the analyzer cache (for re-analysing
      # growing spans incrementally) would only add a Beam write per analyzer.
      disable_analyzer_cache=True,
      # Traced as a TF1 graph: preprocessing_fn is plain TF ops, and TF2 tracing (a
      # tf.function traced several times and saved with its concrete functions) cost 6 s of
      # Transform's 33 s on ML-100K (27.0 s like this; the same vocabularies and transformed
      # examples, written in another order, which the Trainer does not depend on).
      force_tf_compat_v1=True,
      preprocessing_fn=configs.PREPROCESSING_FN,
      custom_config={'code': code})


def latest_blessed_model(settings: configs.PipelineSettings, ids: Dict[str, str], node: str,
                         local_strategy, **excluding) -> resolver.Resolver:
  """The resolver `ids[node]` of the latest blessed model of a model's branch (`ids`:
  node_ids). On Kubeflow, TFX's LatestBlessedModelStrategy: KFP v2 compiles only TFX's own
  strategies into metadata queries. Locally, `local_strategy`, which also skips the models that
  the `excluding` channel rules out (components/tfx/baseline_resolver.py)."""
  history = dict(
      model=channel.Channel(type=standard_artifacts.Model,
                            producer_component_id=ids['trainer'], output_key='model'),
      model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing,
                                     producer_component_id=ids['evaluator'],
                                     output_key='blessing'))
  if settings.for_kubeflow:
    local_strategy, excluding = latest_blessed_model_strategy.LatestBlessedModelStrategy, {}
  return resolver.Resolver(strategy_class=local_strategy, **excluding,
                           **history).with_id(ids[node])


def create_pipeline(
    settings: configs.PipelineSettings,
    data: ingestion.PreparedData,
    model_names: Sequence[str] = configs.MODEL_NAMES,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
) -> tfx_pipeline.Pipeline:
  """Builds the pipeline over `data`: its CSV splits (train/ and eval/ under input_base), its
  schema, and its catalogue, every movie of which the models serve. With demographics, the
  Evaluators also slice by them."""
  if not data.schema_path:
    raise ValueError(f'no schema for the data under {data.input_base}: '
                     'pipeline.schema.with_schema writes one')
  code = code_fingerprint()
  rating_range = list(data.rating_range)
  example_gen, statistics_gen = examples_and_statistics(settings, data)
  schema_gen = ImportSchemaGen(schema_file=data.schema_path)
  example_validator = tfx_components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'], schema=schema_gen.outputs['schema'])
  gate = anomalies_gate.AnomaliesGate(anomalies=example_validator.outputs['anomalies'],
                                      schema=schema_gen.outputs['schema'])
  transform = transform_component(example_gen.outputs['examples'],
                                  gate.outputs['validated_schema'], code)
  components = [example_gen, statistics_gen, schema_gen, example_validator, gate, transform]

  for model_name in model_names:
    ids = node_ids(model_name)
    warm_start = {}
    if settings.warm_start:  # the served model; locally not one trained on these examples
      base = latest_blessed_model(
          settings, ids, 'warm_start', baseline_resolver.LatestBlessedEarlierModelStrategy,
          training_examples=transform.outputs['transformed_examples'])
      components.append(base)
      warm_start = {'base_model': base.outputs['model']}
    trainer = tfx_components.Trainer(
        run_fn=configs.RUN_FN,
        examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'],
        # run_fn trains on the training split and evaluates nothing (the Evaluator does); TFX
        # still resolves an eval split's files, and only the training split is transformed.
        train_args=trainer_pb2.TrainArgs(splits=[ingestion.TRAIN]),
        eval_args=trainer_pb2.EvalArgs(splits=[ingestion.TRAIN]),
        schema=gate.outputs['validated_schema'],
        custom_config={'model_name': model_name,
                       'hparams': settings.hparams[model_name].to_config(),
                       'rating_range': rating_range,
                       'catalogue_path': data.catalogue_path,
                       'code': code},
        **warm_start).with_id(ids['trainer'])
    baseline = latest_blessed_model(
        settings, ids, 'resolver', baseline_resolver.LatestBlessedPreviousModelStrategy,
        candidate_run=trainer.outputs['model_run'])
    evaluator = tfx_components.Evaluator(
        examples=example_gen.outputs['examples'],
        model=trainer.outputs['model'],
        baseline_model=baseline.outputs['model'],
        example_splits=[ingestion.EVAL],
        eval_config=evaluation.eval_config(
            settings.rmse_upper_bound, settings.max_rmse_increase, rating_range,
            data.has_demographics, max_ndcg_decrease=settings.max_ndcg_decrease,
            ranking_must_beat_popularity=settings.ranking_must_beat_popularity,
        ),
        # Both models' metrics on the candidate's slices (TFMA's default takes the union of
        # the candidate's and the baseline's slice features).
        module_path=candidate_slices.__name__).with_id(ids['evaluator'])
    pusher = tfx_components.Pusher(
        model=trainer.outputs['model'],
        model_blessing=evaluator.outputs['blessing'],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=os.path.join(settings.serving_dir, model_name))),
        custom_executor_spec=atomic_pusher.EXECUTOR_SPEC).with_id(ids['pusher'])
    components += [trainer, baseline, evaluator, pusher]

  return tfx_pipeline.Pipeline(
      pipeline_name=settings.pipeline_name,
      pipeline_root=settings.pipeline_root,
      components=components,
      enable_cache=settings.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(settings.beam_pipeline_args),
  )
