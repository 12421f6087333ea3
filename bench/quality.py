"""Quality benchmark on MovieLens 100K: `python -m bench.quality` (or `make bench-quality`).

Runs the project's own preprocessing (`preprocessing_fn` through tf.Transform's Beam
implementation) and training code (`components.models.trainer.fit_model`) outside TFX's orchestration,
so that many splits fit in minutes, and scores the predictions on:

1. the canonical five folds u1..u5 (train uN.base, test uN.test): RMSE and MAE per fold, mean
   and standard deviation, for both models;
2. a seeded random 80/20 split: RMSE, MAE and MSE, next to the seed document's MSE claims;
3. cold start: every rating of a seeded 10% of the users held out (users never seen in
   training): RMSE next to the global-mean and item-mean baselines;
4. top-10, Microsoft Recommenders' protocol (seeded 75/25 split of each user's ratings): P@10,
   R@10, NDCG@10, MAP and coverage of the exported `recommend` signature, next to most-popular;
5. new users ranked: the cold-start users of 3 as new users (user_id '') sending 10 ratings:
   `recommend`'s top 10 against their other ratings, next to most-popular;
6. new movies: every rating of a seeded 10% of the movies held out of training: RMSE against
   global mean + user offset + genre offset, and the AUC of those movies in each user's whole
   `recommend` list against the user's other unseen movies;
and, on the same splits, the global-mean and the regularised user/item-bias baselines.

Writes bench/results/quality.json and bench/results/quality.md (command, date, machine, commit).
Hyperparameters are those of pipeline/configs.py; nothing here is tuned on a test fold.
"""

from components import tf_env  # noqa: F401  (first: Keras 2 before TensorFlow loads)

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np

from bench import provenance
from components import atomic_files
from components.data import features as f
from components.data import movielens_formats as formats
from components.data import movielens_splits as splits
from components.models.model_names import MODEL_NAMES

PROJECT_DIR = provenance.PROJECT_DIR
DEFAULT_DATA = provenance.ML_100K_DIR
RESULTS_DIR = os.path.join(PROJECT_DIR, 'bench', 'results')
SEED_CLAIMS_MSE = {'content_based': 0.84, 'collaborative_filtering': 0.95}


def raw_columns(data: formats.MovieLensData, ratings: formats.Ratings) -> Dict[str, np.ndarray]:
  """The raw features of each rating, as ingestion writes them (one array per column)."""
  movies = [data.movies[m] for m in ratings.movie_id.tolist()]
  encode = lambda values: np.array([v.encode('utf-8') for v in values], dtype=object)
  columns = {
      f.USER_ID: encode(str(u) for u in ratings.user_id.tolist()),
      f.MOVIE_ID: encode(str(m) for m in ratings.movie_id.tolist()),
      f.LABEL: ratings.rating.astype(np.float32),
      f.TIMESTAMP: ratings.timestamp.astype(np.int64),
      f.TITLE: encode(m.title for m in movies),
      f.RELEASE_YEAR: np.array([m.release_year for m in movies], np.int64),
      f.GENRES: encode(f.GENRE_SEPARATOR.join(m.genres) for m in movies),
  }
  if data.users:  # MovieLens latest has no demographics
    users = [data.users[u] for u in ratings.user_id.tolist()]
    columns.update({
        f.AGE: np.array([u.age for u in users], np.int64),
        f.GENDER: encode(u.gender for u in users),
        f.OCCUPATION: encode(u.occupation for u in users),
        f.ZIP_CODE: encode(u.zip_code for u in users),
    })
  return columns


def analyze(train_columns: Dict[str, np.ndarray], temp_dir: str):
  """tf.Transform's analysis of `preprocessing_fn` over the training ratings."""
  import apache_beam as beam  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_transform as tft  # pylint: disable=import-outside-toplevel
  import tensorflow_transform.beam as tft_beam  # pylint: disable=import-outside-toplevel
  from tensorflow_transform.tf_metadata import dataset_metadata  # pylint: disable=import-outside-toplevel
  from tensorflow_transform.tf_metadata import metadata_io  # pylint: disable=import-outside-toplevel
  from tfx_bsl.public import tfxio  # pylint: disable=import-outside-toplevel
  from components.transform import preprocessing  # pylint: disable=import-outside-toplevel
  from pipeline import schema as schema_lib  # pylint: disable=import-outside-toplevel

  schema = schema_lib.schema_for_dataset(f.AGE in train_columns, 0.5, 5.0)
  def example(i):
    feature = {}
    for name, values in train_columns.items():
      value = values[i]
      if isinstance(value, bytes):
        feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
      elif isinstance(value, (np.floating, float)):
        feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
      else:
        feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
  serialized = [example(i) for i in range(len(train_columns[f.LABEL]))]
  source = tfxio.TFExampleBeamRecord(physical_format='inmem', telemetry_descriptors=['bench'],
                                     schema=schema)
  output_dir = os.path.join(temp_dir, 'transform')
  with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=os.path.join(temp_dir, 'tmp')):
    record_batches = (pipeline | beam.Create(serialized, reshuffle=False)
                      | source.BeamSource())
    transform_fn = ((record_batches, source.TensorAdapterConfig())
                    | tft_beam.AnalyzeDataset(preprocessing.preprocessing_fn))
    _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
  # The raw schema, as TFX's Transform writes it: the export's tf.Example parser needs it.
  metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                             os.path.join(output_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return tft.TFTransformOutput(output_dir)


def transform(tft_output, columns: Dict[str, np.ndarray], ordered: bool = True):
  """Applies the saved Transform graph (as serving does) and returns model-ready Examples, in the
  same canonical order as the Trainer reads them (so training matches the pipeline's), or, with
  `ordered=False`, in the order of `columns`."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from components.models import model_io  # pylint: disable=import-outside-toplevel
  layer = tft_output.transform_features_layer()
  raw = {name: values for name, values in columns.items() if name != f.LABEL}
  chunks: List[Dict[str, np.ndarray]] = []
  n = len(columns[f.LABEL])
  for start in range(0, n, 50_000):
    batch = {name: tf.constant(list(v[start:start + 50_000]) if v.dtype == object
                               else v[start:start + 50_000])[:, tf.newaxis]
             for name, v in raw.items()}
    chunks.append({name: t.numpy() for name, t in layer(batch).items()})
  merged = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
  if not ordered:
    return model_io.Examples(merged, columns[f.LABEL].astype(np.float32))
  return model_io.canonical_order(merged, columns[f.LABEL])


def bias_baseline(train_users, train_movies, train_y, test_users, test_movies,
                  user_reg: float = 10.0, movie_reg: float = 25.0) -> np.ndarray:
  """Regularised user and movie biases (Koren 2010, section 2.1), one pass each."""
  mean = train_y.mean()
  movie_bias: Dict[int, float] = {}
  residual = train_y - mean
  for movie in np.unique(train_movies):
    mask = train_movies == movie
    movie_bias[movie] = residual[mask].sum() / (movie_reg + mask.sum())
  residual = residual - np.array([movie_bias[m] for m in train_movies])
  user_bias: Dict[int, float] = {}
  for user in np.unique(train_users):
    mask = train_users == user
    user_bias[user] = residual[mask].sum() / (user_reg + mask.sum())
  return (mean + np.array([user_bias.get(u, 0.0) for u in test_users])
          + np.array([movie_bias.get(m, 0.0) for m in test_movies]))


def scores(predictions: np.ndarray, truth: np.ndarray) -> Dict[str, float]:
  predictions = np.clip(predictions, 1.0, 5.0)
  error = predictions - truth
  return {'rmse': float(np.sqrt(np.mean(error ** 2))), 'mae': float(np.mean(np.abs(error))),
          'mse': float(np.mean(error ** 2)), 'n': int(len(truth))}


def prepared(data, train, test, temp_dir):
  """(tf.Transform output fitted on `train`, transformed train and test Examples)."""
  tft_output = analyze(raw_columns(data, train), temp_dir)
  return (tft_output, transform(tft_output, raw_columns(data, train)),
          transform(tft_output, raw_columns(data, test)))


def evaluate_split(data, is_test: np.ndarray, hparams, models) -> Dict[str, Dict[str, float]]:
  from components.models import trainer  # pylint: disable=import-outside-toplevel
  train = data.ratings.take(~is_test)
  test = data.ratings.take(is_test)
  results = {
      'global_mean': scores(np.full(len(test), train.rating.mean()), test.rating),
      'bias_baseline': scores(bias_baseline(train.user_id, train.movie_id, train.rating,
                                            test.user_id, test.movie_id), test.rating),
  }
  with tempfile.TemporaryDirectory() as temp_dir:
    tft_output, train_examples, test_examples = prepared(data, train, test, temp_dir)
    for name in models:
      model = trainer.fit_model(tft_output, hparams[name], train_examples)
      predicted = model.predict(test_examples.features, batch_size=8192, verbose=0)
      results[name] = scores(predicted, test_examples.labels)
  return results


def item_mean(train_movies, train_y, test_movies) -> np.ndarray:
  """Each movie's mean training rating (the global mean for a movie without one)."""
  sums = np.bincount(train_movies, weights=train_y)
  counts = np.bincount(train_movies)
  means = np.divide(sums, counts, out=np.full(len(sums), train_y.mean()), where=counts > 0)
  known = test_movies < len(means)
  return np.where(known, means[np.minimum(test_movies, len(means) - 1)], train_y.mean())


def user_request_features(data: formats.MovieLensData, user_ids: List[int], specs) -> Dict:
  """The demographics of `user_ids` as a request sends them, for the inputs in `specs` (a new
  user tells who they are; for a known user they equal the stored ones)."""
  users = [data.users[u] for u in user_ids] if data.users else []
  columns = {f.AGE: lambda u: u.age, f.GENDER: lambda u: u.gender,
             f.OCCUPATION: lambda u: u.occupation, f.ZIP_CODE: lambda u: u.zip_code}
  return {name: [value(u) for u in users] for name, value in columns.items()
          if name in specs and users}


def predict_with_signature(saved_model, data: formats.MovieLensData, ratings: formats.Ratings,
                           profiles: Dict[int, Tuple[List[str], List[float]]],
                           signature: str = 'predict_rating') -> np.ndarray:
  """Predicted ratings from the exported SavedModel's `signature` (loaded the way TF Serving
  loads it; `predict_rating_new_user` takes no user_id: every user is a new one). The users'
  demographics and their `profiles` (user -> rated movie ids, ratings) are sent with the
  request where the signature takes them, as serving/client.py sends a request."""
  from components.export import signatures  # pylint: disable=import-outside-toplevel
  from serving import client  # pylint: disable=import-outside-toplevel
  predict = saved_model.signatures[signature]
  specs = predict.structured_input_signature[1]
  predicted = []
  for start in range(0, len(ratings), 1024):
    users = ratings.user_id[start:start + 1024].tolist()
    movies = ratings.movie_id[start:start + 1024].tolist()
    request = {f.MOVIE_ID: [str(m) for m in movies], **user_request_features(data, users, specs)}
    if f.USER_ID in specs:
      request[f.USER_ID] = [str(u) for u in users]
    if signatures.RATED_MOVIE_IDS in specs:
      rows = [profiles.get(u, ([], [])) for u in users]
      request[signatures.RATED_MOVIE_IDS] = [ids for ids, _ in rows]
      request[signatures.RATED_RATINGS] = [values for _, values in rows]
    predicted.append(client.call_loaded(predict, request)[signatures.RATING])
  return np.concatenate(predicted)


def exported_models(data, train, hparams, models, temp_dir):
  """Trains each model on `train` and exports it with its signatures; yields (name, the
  SavedModel loaded the way TF Serving loads it)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from components.export import signatures  # pylint: disable=import-outside-toplevel
  from components.models import trainer  # pylint: disable=import-outside-toplevel
  tft_output = analyze(raw_columns(data, train), temp_dir)
  train_examples = transform(tft_output, raw_columns(data, train))
  for name in models:
    model = trainer.fit_model(tft_output, hparams[name], train_examples)
    export_dir = os.path.join(temp_dir, 'export', name)
    signatures.export(model, tft_output, export_dir, (1.0, 5.0), catalogue_of(data),
                      train_examples)
    yield name, tf.saved_model.load(export_dir)


def cold_users_split(data, ratings: formats.Ratings, fraction: float, given: int, seed: int):
  """(train, shown, test) parts of `ratings`: a seeded `fraction` of the users is held out of
  train; `given` of each held-out user's ratings (seeded) are shown (sent with the request, as
  a new user's first ratings) and the rest are tested."""
  is_cold = splits.eval_mask(data, ratings, splits.COLD_USERS, fraction, seed)
  train, cold = ratings.take(~is_cold), ratings.take(is_cold)
  rng = np.random.default_rng(seed)
  is_given = np.zeros(len(cold), dtype=bool)
  for user in np.unique(cold.user_id):
    is_given[rng.permutation(np.nonzero(cold.user_id == user)[0])[:given]] = True
  return train, cold.take(is_given), cold.take(~is_given)


def evaluate_cold_start(data, hparams, models, fraction: float = 0.1, given: int = 10,
                        seed: int = 42):
  """Users held out of training entirely (a seeded 10%). Each sends `given` of their ratings
  (seeded) with the request, as a new user's first ratings; the rest are tested. Every method
  is scored on the same test ratings; each model twice: by `predict_rating` for a user it does
  not know (`content_based` reads their demographics) and by `predict_rating_new_user` with the
  given ratings sent."""
  train, shown, test = cold_users_split(data, data.ratings, fraction, given, seed)
  profiles: Dict[int, Tuple[List[str], List[float]]] = {}
  for user, movie, rating in zip(shown.user_id.tolist(), shown.movie_id.tolist(),
                                 shown.rating.tolist()):
    ids, values = profiles.setdefault(user, ([], []))
    ids.append(str(movie))
    values.append(float(rating))
  means = item_mean(train.movie_id, train.rating, test.movie_id)
  shown_means = item_mean(train.movie_id, train.rating, shown.movie_id)
  offsets = {}
  for user in profiles:
    mask = shown.user_id == user
    offsets[user] = (shown.rating[mask] - shown_means[mask]).sum() / (mask.sum() + 5.0)
  results = {
      'global_mean': scores(np.full(len(test), train.rating.mean()), test.rating),
      'item_mean': scores(means, test.rating),
      f'item_mean + user offset from {given} ratings': scores(
          means + np.array([offsets[u] for u in test.user_id.tolist()]), test.rating),
      'n_cold_users': len(profiles), 'given_per_user': given,
  }
  with tempfile.TemporaryDirectory() as temp_dir:
    for name, saved_model in exported_models(data, train, hparams, models, temp_dir):
      results[f'{name} (no ratings)'] = scores(predict_with_signature(saved_model, data, test, {}),
                                               test.rating)
      results[f'{name} ({given} ratings sent)'] = scores(predict_with_signature(
          saved_model, data, test, profiles, 'predict_rating_new_user'), test.rating)
  return results


def catalogue_of(data: formats.MovieLensData):
  """The serving catalogue (every movie of the dataset), as ingestion writes it."""
  from components.export import signatures  # pylint: disable=import-outside-toplevel
  movies = sorted(data.movies.values(), key=lambda m: m.movie_id)
  return signatures.Catalogue([str(m.movie_id) for m in movies], [m.title for m in movies],
                              [m.release_year for m in movies],
                              [f.GENRE_SEPARATOR.join(m.genres) for m in movies])


def ranking_metrics(recommended: Dict[str, List[str]], relevant: Dict[str, set], k: int,
                    num_train_movies: int) -> Dict[str, float]:
  """Microsoft Recommenders' definitions with binary relevance, averaged over users
  (components/evaluation/ranking_metrics.py `list_metrics`, which the pipeline's Evaluator uses too):
  P@k, R@k, NDCG@k, MAP (`map`) and coverage = distinct recommended movies / distinct movies
  in training."""
  from components.evaluation import ranking_metrics as ranking  # pylint: disable=import-outside-toplevel
  users = list(relevant)
  result = ranking.list_metrics([recommended[u] for u in users], [relevant[u] for u in users],
                                k, num_train_movies)
  result['map'] = result.pop(f'map@{k}')
  return result


def recommend_with_signature(saved_model, user_ids: List[str], k: int) -> Dict[str, List[str]]:
  """Top-k movie ids per user from the exported SavedModel's `recommend` signature (loaded the
  way TF Serving loads it); the training history is excluded by the signature itself."""
  from serving import client  # pylint: disable=import-outside-toplevel
  recommend = saved_model.signatures['recommend']
  result = {}
  for start in range(0, len(user_ids), 256):
    batch = user_ids[start:start + 256]
    movie_ids = client.call_loaded(recommend, {'user_id': batch, 'k': [k] * len(batch)})[
        'movie_ids']
    for user, row in zip(batch, movie_ids):
      result[user] = [m.decode('utf-8') for m in row if m]
  return result


def evaluate_top_k(data, hparams, models, k: int = 10, fraction: float = 0.25, seed: int = 42):
  """Microsoft Recommenders' top-k protocol: a seeded 75/25 split of each user's ratings; the
  top k of all movies the user did not rate in training; relevant = rated in the test part."""
  is_test = splits.eval_mask(data, data.ratings, splits.PER_USER, fraction, seed)
  train, test = data.ratings.take(~is_test), data.ratings.take(is_test)
  relevant: Dict[str, set] = {}
  for user, movie in zip(test.user_id.tolist(), test.movie_id.tolist()):
    relevant.setdefault(str(user), set()).add(str(movie))
  train_movies = np.unique(train.movie_id)
  seen: Dict[str, set] = {}
  for user, movie in zip(train.user_id.tolist(), train.movie_id.tolist()):
    seen.setdefault(str(user), set()).add(str(movie))
  counts = np.bincount(train.movie_id)
  by_popularity = [str(m) for m in np.argsort(-counts, kind='stable') if counts[m] > 0]
  popular = {user: [m for m in by_popularity if m not in seen[user]][:k] for user in relevant}
  results = {'most_popular': ranking_metrics(popular, relevant, k, len(train_movies))}
  users = sorted(relevant)
  with tempfile.TemporaryDirectory() as temp_dir:
    for name, saved_model in exported_models(data, train, hparams, models, temp_dir):
      recommended = recommend_with_signature(saved_model, users, k)
      leaked = sum(len(set(recommended[u]) & seen[u]) for u in users)
      if leaked:
        raise AssertionError(f'{name}: recommend returned {leaked} movies rated in training')
      results[name] = ranking_metrics(recommended, relevant, k, len(train_movies))
  return results


def recommend_rows(saved_model, requests: List[Dict], k: int,
                   signature: str = 'recommend') -> List[List[str]]:
  """Top-k movie ids for each request ({'user_id', 'exclude', and for a new user 'rated':
  {movie: rating} and 'features': demographics}) from the `signature` signature
  (`recommend_new_user` takes no user_id: every request is a new user's), sent as
  serving/client.py sends a request."""
  from components.export import signatures  # pylint: disable=import-outside-toplevel
  from serving import client  # pylint: disable=import-outside-toplevel
  recommend = saved_model.signatures[signature]
  specs = recommend.structured_input_signature[1]
  result = []
  for start in range(0, len(requests), 64):
    batch = requests[start:start + 64]
    request = {'k': [k] * len(batch), 'exclude_movie_ids': [list(r['exclude']) for r in batch]}
    if f.USER_ID in specs:
      request[f.USER_ID] = [r['user_id'] for r in batch]
    if signatures.RATED_MOVIE_IDS in specs:
      request[signatures.RATED_MOVIE_IDS] = [list(r.get('rated', {})) for r in batch]
      request[signatures.RATED_RATINGS] = [list(r.get('rated', {}).values()) for r in batch]
    for name in specs:
      if name not in request and all(name in r.get('features', {}) for r in batch):
        request[name] = [r['features'][name] for r in batch]
    for row in client.call_loaded(recommend, request)['movie_ids']:
      result.append([m.decode('utf-8') for m in row if m])
  return result


def _popular_lists(train: formats.Ratings, excluded: List[set], k: int) -> List[List[str]]:
  counts = np.bincount(train.movie_id)
  by_popularity = [str(m) for m in np.argsort(-counts, kind='stable') if counts[m] > 0]
  lists = []
  for seen in excluded:
    top = []
    for movie in by_popularity:
      if movie not in seen:
        top.append(movie)
        if len(top) == k:
          break
    lists.append(top)
  return lists


def _demographics(data: formats.MovieLensData, user: int) -> Dict:
  if not data.users:
    return {}
  u = data.users[user]
  return {f.AGE: u.age, f.GENDER: u.gender, f.OCCUPATION: u.occupation, f.ZIP_CODE: u.zip_code}


def evaluate_new_user_ranking(data, hparams, models, k: int = 10, fraction: float = 0.1,
                              given: int = 10, seed: int = 42):
  """The cold-start users (held out of training, as `evaluate_cold_start`), each a new user
  who sends `given` seeded ratings and their demographics: `recommend_new_user`'s top k (the
  sent movies excluded) against the user's other ratings, next to most-popular on the same
  users."""
  from components.evaluation import ranking_metrics as ranking  # pylint: disable=import-outside-toplevel
  train, shown, test = cold_users_split(data, data.ratings, fraction, given, seed)
  users = sorted(np.unique(test.user_id).tolist())
  sent: Dict[int, Dict[str, float]] = {u: {} for u in users}
  for user, movie, rating in zip(shown.user_id.tolist(), shown.movie_id.tolist(),
                                 shown.rating.tolist()):
    if user in sent:
      sent[user][str(movie)] = float(rating)
  relevant = {u: set() for u in users}
  for user, movie in zip(test.user_id.tolist(), test.movie_id.tolist()):
    relevant[user].add(str(movie))
  truth = [relevant[u] for u in users]
  trained = len(np.unique(train.movie_id))
  results = {'most_popular': ranking.list_metrics(
      _popular_lists(train, [set(sent[u]) for u in users], k), truth, k, trained),
      'given_per_user': given}
  requests = [{'user_id': '', 'exclude': list(sent[u]), 'rated': sent[u],
               'features': _demographics(data, u)} for u in users]
  with tempfile.TemporaryDirectory() as temp_dir:
    for name, saved_model in exported_models(data, train, hparams, models, temp_dir):
      results[name] = ranking.list_metrics(
          recommend_rows(saved_model, requests, k, 'recommend_new_user'), truth, k, trained)
  return results


def genre_baseline(data: formats.MovieLensData, train: formats.Ratings, test: formats.Ratings,
                   user_reg: float = 10.0, genre_reg: float = 25.0) -> np.ndarray:
  """Global mean + regularised user offset + the mean regularised offset of the movie's genres
  (fitted on `train`): what can be said of a movie with no ratings from its genres alone."""
  mean = train.rating.mean()
  residual = train.rating - mean
  user_offset: Dict[int, float] = {}
  for user in np.unique(train.user_id):
    mask = train.user_id == user
    user_offset[user] = residual[mask].sum() / (user_reg + mask.sum())
  residual = residual - np.array([user_offset[u] for u in train.user_id.tolist()])
  sums: Dict[str, float] = {}
  counts: Dict[str, int] = {}
  for movie, value in zip(train.movie_id.tolist(), residual.tolist()):
    for genre in data.movies[movie].genres:
      sums[genre] = sums.get(genre, 0.0) + value
      counts[genre] = counts.get(genre, 0) + 1
  genre_offset = {g: sums[g] / (genre_reg + counts[g]) for g in sums}
  def movie_offset(movie):
    genres = [genre_offset.get(g, 0.0) for g in data.movies[movie].genres]
    return float(np.mean(genres)) if genres else 0.0
  return (mean + np.array([user_offset.get(u, 0.0) for u in test.user_id.tolist()])
          + np.array([movie_offset(m) for m in test.movie_id.tolist()]))


def auc_of_new_movies(rankings: Dict[int, List[str]], positives: Dict[int, set],
                      candidates: Dict[int, set]) -> float:
  """Mean over users of the AUC of their held-out movies (`positives`) against their other
  `candidates` (unseen movies), by position in the user's full `recommend` list; movies the
  list leaves out share its last place (ties count half)."""
  aucs = []
  for user, ranked in rankings.items():
    position = {movie: i for i, movie in enumerate(ranked)}
    last = len(ranked)
    rank = lambda movie: position.get(movie, last)
    negatives = np.array([rank(m) for m in candidates[user] - positives[user]], np.float64)
    if not len(negatives):
      continue
    pairs = [np.mean((negatives > rank(m)) + 0.5 * (negatives == rank(m)))
             for m in positives[user]]
    aucs.append(float(np.mean(pairs)))
  return float(np.mean(aucs)) if aucs else float('nan')


def new_movies_split(ratings: formats.Ratings, fraction: float, seed: int):
  """(held-out movie ids, the other movies' ratings, the held-out movies' ratings): every
  rating of a seeded `fraction` of the rated movies."""
  movies = np.unique(ratings.movie_id)
  held = set(np.random.default_rng(seed).permutation(movies)[:int(round(len(movies) * fraction))]
             .tolist())
  is_new = np.isin(ratings.movie_id, list(held))
  return held, ratings.take(~is_new), ratings.take(is_new)


def evaluate_new_movies(data, hparams, models, fraction: float = 0.1, seed: int = 42,
                        ratings=None):
  """Every rating of a seeded `fraction` of the movies held out of training (movies new to the
  models, still in the catalogue): the RMSE on those ratings from `predict_rating`, against
  global mean + user offset + genre offset; and, for each user who rated one, how the new
  movies they rated rank among all the movies they did not rate in training (AUC), from the
  whole `recommend` list. Most-popular ranks a movie without ratings last. `ratings`: the
  ratings to split (default: all; bench.tune passes the protocol's training part)."""
  held, train, test = new_movies_split(data.ratings if ratings is None else ratings, fraction,
                                       seed)
  catalogue = {str(m) for m in data.movies}
  seen: Dict[int, set] = {}
  for user, movie in zip(train.user_id.tolist(), train.movie_id.tolist()):
    seen.setdefault(user, set()).add(str(movie))
  positives: Dict[int, set] = {}
  for user, movie in zip(test.user_id.tolist(), test.movie_id.tolist()):
    positives.setdefault(user, set()).add(str(movie))
  users = sorted(u for u in positives if u in seen)  # users the models know
  candidates = {u: catalogue - seen[u] for u in users}
  results = {'new_movies': len(held), 'test_ratings': len(test), 'users': len(users),
             'genre_baseline': scores(genre_baseline(data, train, test), test.rating)}
  popular = _popular_lists(train, [seen[u] for u in users], len(catalogue))
  results['most_popular'] = {'auc': auc_of_new_movies(dict(zip(users, popular)), positives,
                                                      candidates)}
  requests = [{'user_id': str(u), 'exclude': []} for u in users]
  with tempfile.TemporaryDirectory() as temp_dir:
    for name, saved_model in exported_models(data, train, hparams, models, temp_dir):
      ranked = recommend_rows(saved_model, requests, len(catalogue))
      results[name] = scores(predict_with_signature(saved_model, data, test, {}), test.rating)
      results[name]['auc'] = auc_of_new_movies(dict(zip(users, ranked)), positives, candidates)
  return results


def summarize(per_fold: Dict[str, Dict[str, Dict[str, float]]]) -> Dict[str, Dict[str, float]]:
  methods = next(iter(per_fold.values())).keys()
  summary = {}
  for method in methods:
    rmse = [fold[method]['rmse'] for fold in per_fold.values()]
    mae = [fold[method]['mae'] for fold in per_fold.values()]
    summary[method] = {'rmse_mean': float(np.mean(rmse)), 'rmse_std': float(np.std(rmse)),
                       'mae_mean': float(np.mean(mae)), 'mae_std': float(np.std(mae))}
  return summary


def render(report: Dict) -> str:
  lines = ['# Quality benchmark (MovieLens 100K)', '',
           f'- command: `{report["command"]}`', f'- date: {report["date"]}',
           f'- machine: {report["machine"]}', f'- commit: {report["commit"]}',
           f'- wall time: {report["seconds"]:.0f} s']
  if 'canonical' in report:
    folds = report['canonical']['folds']
    lines += ['', '## Canonical 5-fold (train uN.base, test uN.test)', '',
              '| method | ' + ' | '.join(f'{fold} RMSE' for fold in folds)
              + ' | mean RMSE ± std | mean MAE ± std |',
              '|---|' + '---|' * (len(folds) + 2)]
    for method, summary in report['canonical']['summary'].items():
      per_fold = ' | '.join(f'{folds[fold][method]["rmse"]:.4f}' for fold in folds)
      lines.append(f'| {method} | {per_fold} | {summary["rmse_mean"]:.4f} ± '
                   f'{summary["rmse_std"]:.4f} | {summary["mae_mean"]:.4f} ± '
                   f'{summary["mae_std"]:.4f} |')
  if 'random' in report:
    lines += ['', '## Seeded random 80/20 (seed 42)', '',
              '| method | RMSE | MAE | MSE | seed claim (MSE) |', '|---|---|---|---|---|']
    for method, result in report['random'].items():
      claim = SEED_CLAIMS_MSE.get(method)
      lines.append(f'| {method} | {result["rmse"]:.4f} | {result["mae"]:.4f} | '
                   f'{result["mse"]:.4f} | {claim if claim is not None else ""} |')
  if 'cold_start' in report:
    cold = report['cold_start']
    item = cold['item_mean']['rmse']
    lines += ['', f'## Cold start: {cold["n_cold_users"]} users (10%, seed 42) held out of '
              f'training; {cold["given_per_user"]} ratings of each sent with the request, the '
              'rest tested', '',
              '| method | RMSE | MAE | RMSE vs item mean |', '|---|---|---|---|']
    for method, result in cold.items():
      if isinstance(result, dict):
        lines.append(f'| {method} | {result["rmse"]:.4f} | {result["mae"]:.4f} | '
                     f'{100 * (result["rmse"] / item - 1):+.1f}% |')
  if 'top_k' in report:
    lines += ['', '## Top-10 (Microsoft Recommenders protocol: per-user 75/25 split, seed 42; '
              'top 10 of the movies not rated in training, from the `recommend` signature; '
              'relevant = rated in the test part)', '',
              '| method | P@10 | R@10 | NDCG@10 | MAP | coverage |', '|---|---|---|---|---|---|']
    for method, r in report['top_k'].items():
      lines.append(f'| {method} | {r["precision@10"]:.4f} | {r["recall@10"]:.4f} | '
                   f'{r["ndcg@10"]:.4f} | {r["map"]:.4f} | {r["coverage"]:.4f} |')
  if 'new_user_ranking' in report:
    cold = report['new_user_ranking']
    popular = cold['most_popular']['ndcg@10']
    lines += ['', f'## New users ranked: the cold-start users, each sending '
              f'{cold["given_per_user"]} ratings (and demographics); top 10 of '
              '`recommend_new_user` against their other ratings', '',
              '| method | P@10 | R@10 | NDCG@10 | MAP | NDCG@10 vs most-popular |',
              '|---|---|---|---|---|---|']
    for method, r in cold.items():
      if isinstance(r, dict):
        lines.append(f'| {method} | {r["precision@10"]:.4f} | {r["recall@10"]:.4f} | '
                     f'{r["ndcg@10"]:.4f} | {r["map@10"]:.4f} | {r["ndcg@10"] / popular:.2f}x |')
  if 'new_movies' in report:
    new = report['new_movies']
    base = new['genre_baseline']['rmse']
    lines += ['', f'## New movies: every rating of {new["new_movies"]} movies (10%, seed 42) '
              f'held out of training ({new["test_ratings"]} ratings, {new["users"]} users)', '',
              '| method | RMSE | RMSE vs genre baseline | AUC of the new movies in `recommend` |',
              '|---|---|---|---|']
    for method, r in new.items():
      if isinstance(r, dict):
        rmse = f'{r["rmse"]:.4f}' if 'rmse' in r else ''
        vs = f'{100 * (r["rmse"] / base - 1):+.1f}%' if 'rmse' in r else ''
        auc = f'{r["auc"]:.4f}' if 'auc' in r else ''
        lines.append(f'| {method} | {rmse} | {vs} | {auc} |')
  return '\n'.join(lines) + '\n'


def _write_atomically(path: str, text: str) -> None:
  atomic_files.write(path, text)


PROTOCOLS = ('canonical', 'random', 'cold_start', 'top_k', 'new_user_ranking', 'new_movies')


def read_data_dir(parser: argparse.ArgumentParser, data_dir: str) -> formats.MovieLensData:
  """`--data-dir`'s ratings, or one line on stderr (exit 2) naming what is wrong with it."""
  try:
    return formats.read_movielens(data_dir)
  except formats.IngestionError as e:
    parser.error(f'--data-dir: {e} (or set MOVIELENS_100K_DIR)')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', default=DEFAULT_DATA)
  parser.add_argument('--folds', nargs='+', default=['u1', 'u2', 'u3', 'u4', 'u5'])
  parser.add_argument('--models', nargs='+', default=list(MODEL_NAMES), choices=MODEL_NAMES)
  parser.add_argument('--protocols', nargs='+', default=list(PROTOCOLS), choices=PROTOCOLS)
  parser.add_argument('--results-dir', default=RESULTS_DIR)
  args = parser.parse_args(argv)
  from pipeline import configs  # pylint: disable=import-outside-toplevel
  hparams = configs.default_hparams()
  started = time.monotonic()
  data = read_data_dir(parser, args.data_dir)
  if data.dataset != formats.ML_100K:
    print(f'error: {args.data_dir} is {data.dataset}; this benchmark needs MovieLens 100K',
          file=sys.stderr)
    return 2
  report = {
      'command': ' '.join(['python -m bench.quality']
                          + list(argv if argv is not None else sys.argv[1:])),
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'machine': provenance.machine(),
      'commit': provenance.commit(),
      'hparams': {name: values.to_config() for name, values in hparams.items()},
  }
  if 'canonical' in args.protocols:
    folds = {}
    for fold in args.folds:
      mask = splits.eval_mask(data, data.ratings, f'canonical:{fold}')
      folds[fold] = evaluate_split(data, mask, hparams, args.models)
      print(f'{fold}: ' + ', '.join(f'{m} {r["rmse"]:.4f}' for m, r in folds[fold].items()),
            flush=True)
    report['canonical'] = {'folds': folds, 'summary': summarize(folds)}
  if 'random' in args.protocols:
    report['random'] = evaluate_split(
        data, splits.eval_mask(data, data.ratings, splits.RANDOM, 0.2, seed=42), hparams,
        args.models)
    print('random 80/20: ' + ', '.join(f'{m} {r["rmse"]:.4f}'
                                       for m, r in report['random'].items()), flush=True)
  if 'cold_start' in args.protocols:
    report['cold_start'] = evaluate_cold_start(data, hparams, args.models)
    print('cold start: ' + ', '.join(f'{m} {r["rmse"]:.4f}' for m, r in
                                     report['cold_start'].items() if isinstance(r, dict)),
          flush=True)
  if 'top_k' in args.protocols:
    report['top_k'] = evaluate_top_k(data, hparams, args.models)
    print('top-k: ' + ', '.join(f'{m} NDCG@10 {r["ndcg@10"]:.4f}'
                                for m, r in report['top_k'].items()), flush=True)
  if 'new_user_ranking' in args.protocols:
    report['new_user_ranking'] = evaluate_new_user_ranking(data, hparams, args.models)
    print('new users: ' + ', '.join(f'{m} NDCG@10 {r["ndcg@10"]:.4f}' for m, r in
                                    report['new_user_ranking'].items() if isinstance(r, dict)),
          flush=True)
  if 'new_movies' in args.protocols:
    report['new_movies'] = evaluate_new_movies(data, hparams, args.models)
    print('new movies: ' + ', '.join(
        f'{m} ' + ' '.join(f'{k} {v:.4f}' for k, v in r.items() if k in ('rmse', 'auc'))
        for m, r in report['new_movies'].items() if isinstance(r, dict)), flush=True)
  report['seconds'] = time.monotonic() - started
  _write_atomically(os.path.join(args.results_dir, 'quality.json'), json.dumps(report, indent=2))
  _write_atomically(os.path.join(args.results_dir, 'quality.md'), render(report))
  print(render(report))
  return 0


if __name__ == '__main__':
  sys.exit(main())
