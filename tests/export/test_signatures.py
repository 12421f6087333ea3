"""The served signatures (components/export/signatures.py): each method of ServingSignatures
answers alone as its traced signature does, and the exported contract (names, dtypes, shapes,
method names) stays the one in tests/serving_contract.json, which clients are written against.

Both models are trained for one epoch on 3,000 real ML-100K ratings outside TFX (bench.quality's
in-process Transform), exported, and loaded the way TF Serving loads them.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from bench import quality
from components.export import signatures
from components.models import trainer
from pipeline import configs
from components.evaluation import ranking_metrics
from tests.conftest import MODELS, PROJECT_DIR, ml100k_rating, transformed_ml100k_sample

CONTRACT = os.path.join(PROJECT_DIR, 'tests', 'serving_contract.json')


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  """{model name: (ServingSignatures, the SavedModel's directory)}."""
  temp_dir = str(tmp_path_factory.mktemp('signatures'))
  data, tft_output, examples = transformed_ml100k_sample(temp_dir)
  catalogue = quality.catalogue_of(data)
  result = {}
  for name in MODELS:
    model = trainer.fit_model(tft_output, configs.default_hparams()[name].replace(epochs=1),
                              examples)
    export_dir = os.path.join(temp_dir, name)
    result[name] = (signatures.export(model, tft_output, export_dir, (1.0, 5.0), catalogue,
                                      examples), export_dir)
  return result


def _contract(export_dir):
  with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as f:
    graph = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0]
  side = lambda tensors: {
      key: f'{tf.dtypes.as_dtype(info.dtype).name}'
           f'[{",".join(str(d.size) for d in info.tensor_shape.dim)}]'
      for key, info in tensors.items()}
  return {name: {'method_name': sig.method_name, 'inputs': side(sig.inputs),
                 'outputs': side(sig.outputs)}
          for name, sig in graph.signature_def.items() if not name.startswith('__')}


def test_the_exported_contract_is_the_published_one(exported):
  with open(CONTRACT, encoding='utf-8') as f:
    published = json.load(f)
  for name, (_, export_dir) in exported.items():
    assert _contract(export_dir) == published[name]


def test_eight_signatures_one_method_each(exported):
  for serving, _ in exported.values():
    assert set(serving.input_signatures()) == {
        'serving_default', 'regress', 'predict_rating', 'recommend', 'recommend_new_user',
        'predict_rating_new_user', 'similar_movies', 'transformed_features'}
    assert all(callable(getattr(serving, name)) for name in serving.input_signatures())


def _requests(name):
  recommend = dict(user_id=tf.constant(['1', '13', '']), k=tf.constant([10, 3, 5]),
                   exclude_movie_ids=tf.constant([['50'], [''], ['']]))
  rated = dict(rated_movie_ids=tf.constant([['', ''], ['', ''], ['1', '181']]),
               rated_ratings=tf.constant([[0.0, 0.0], [0.0, 0.0], [5.0, 4.0]]))
  demographics = {}
  if name == 'content_based':
    demographics = dict(
        age=tf.constant([-1, -1, 30], tf.int64), gender=tf.constant(['', '', 'F']),
        occupation=tf.constant(['', '', '']), zip_code=tf.constant(['', '', '']))
    recommend.update(**demographics, **rated)
  rate = {key: value for key, value in recommend.items() if key not in ('k', 'exclude_movie_ids')}
  rate['movie_id'] = tf.constant(['1', '50', 'no-such-movie'])
  new_users = dict(k=recommend['k'], exclude_movie_ids=recommend['exclude_movie_ids'],
                   **demographics, **rated)
  new_ratings = dict(movie_id=rate['movie_id'], **demographics, **rated)
  return {'recommend': recommend, 'predict_rating': rate, 'recommend_new_user': new_users,
          'predict_rating_new_user': new_ratings,
          'similar_movies': dict(movie_id=tf.constant(['1', '50']), k=tf.constant([5, 2]))}


def test_each_method_called_alone_answers_as_its_served_signature(exported):
  for name, (serving, export_dir) in exported.items():
    loaded = tf.saved_model.load(export_dir)  # as TF Serving loads it
    for signature, request in _requests(name).items():
      eager = getattr(serving, signature)(dict(request))
      served = loaded.signatures[signature](**request)
      assert set(eager) == set(served)
      for key in eager:
        if eager[key].dtype == tf.string:
          np.testing.assert_array_equal(eager[key].numpy(), served[key].numpy())
        else:
          np.testing.assert_allclose(eager[key].numpy(), served[key].numpy(), rtol=1e-5)
    recommended = serving.recommend(dict(_requests(name)['recommend']))
    assert (recommended[signatures.MOVIE_IDS].numpy()[0] != b'').sum() == 10
    assert b'50' not in recommended[signatures.MOVIE_IDS].numpy()[0]  # excluded


def test_recommend_new_user_reads_the_ratings_sent(exported):
  """`recommend_new_user` is `recommend` for user_id '': content_based's lists are the same;
  collaborative_filtering folds the ratings in (a new list, the sent movies left out) and
  answers a row that sends none with the most rated movies, as `recommend` does."""
  sent = dict(rated_movie_ids=tf.constant([['1', '181', '50'], ['', '', '']]),
              rated_ratings=tf.constant([[5.0, 5.0, 4.0], [0.0, 0.0, 0.0]]))
  ask = dict(k=tf.constant([10, 10]), exclude_movie_ids=tf.constant([[''], ['']]))
  for name, (_, export_dir) in exported.items():
    loaded = tf.saved_model.load(export_dir)
    demographics = {}
    if name == 'content_based':
      demographics = dict(age=tf.constant([30, -1], tf.int64), gender=tf.constant(['F', '']),
                          occupation=tf.constant(['', '']), zip_code=tf.constant(['', '']))
    new_user = loaded.signatures['recommend_new_user'](**ask, **sent, **demographics)
    lists = new_user[signatures.MOVIE_IDS].numpy()
    assert (lists != b'').sum(axis=1).tolist() == [10, 10]
    assert not {b'1', b'181', b'50'} & set(lists[0])
    assert list(lists[0]) != list(lists[1])
    stored_inputs = sent if name == 'content_based' else {}
    by_recommend = loaded.signatures['recommend'](
        user_id=tf.constant(['', '']), **ask, **stored_inputs, **demographics)
    if name == 'content_based':
      np.testing.assert_array_equal(lists, by_recommend[signatures.MOVIE_IDS].numpy())
    else:  # recommend('') is the most rated movies, and so is a new user who sends nothing
      np.testing.assert_array_equal(lists[1], by_recommend[signatures.MOVIE_IDS].numpy()[1])
      assert list(lists[0]) != list(by_recommend[signatures.MOVIE_IDS].numpy()[0])


def test_predict_rating_new_user_reads_the_ratings_sent(exported):
  """`predict_rating_new_user` is `predict_rating` for user_id '': content_based's ratings are
  the same; collaborative_filtering folds the ratings in, so a user who sends 5 stars is rated
  above one who sends 1 star for the same movies, and a row that sends none is the average
  user, as `predict_rating('')`."""
  sent = dict(rated_movie_ids=tf.constant([['1', '181', '50']] * 2 + [['', '', '']]),
              rated_ratings=tf.constant([[5.0] * 3, [1.0] * 3, [0.0] * 3]))
  movie_id = tf.constant(['100'] * 3)
  for name, (_, export_dir) in exported.items():
    loaded = tf.saved_model.load(export_dir)
    demographics = {}
    if name == 'content_based':
      demographics = dict(age=tf.constant([30, 30, -1], tf.int64),
                          gender=tf.constant(['F', 'F', '']),
                          occupation=tf.constant([''] * 3), zip_code=tf.constant([''] * 3))
    rating = loaded.signatures['predict_rating_new_user'](
        movie_id=movie_id, **sent, **demographics)[signatures.RATING].numpy()
    assert rating[0] > rating[1] + 0.5, (name, rating)
    stored_inputs = sent if name == 'content_based' else {}
    by_predict_rating = loaded.signatures['predict_rating'](
        user_id=tf.constant([''] * 3), movie_id=movie_id, **stored_inputs,
        **demographics)[signatures.RATING].numpy()
    if name == 'content_based':
      np.testing.assert_array_equal(rating, by_predict_rating)
    else:  # predict_rating('') is the average user, and so is a new user who sends nothing
      assert rating[2] == pytest.approx(by_predict_rating[2], abs=1e-6)
      assert len({round(float(r), 4) for r in by_predict_rating}) == 1
      assert abs(rating[0] - by_predict_rating[0]) > 0.1


def test_each_rating_gets_its_users_lists_whatever_else_is_in_the_batch(exported):
  """`transformed_features` computes the lists once per distinct user of a batch: users repeated
  and interleaved, and one unknown, get what each gets alone."""
  users = ['1', '13', '1', '7', '13', '1', 'no-such-user', '7']
  lists = (ranking_metrics.RECOMMENDED, ranking_metrics.POPULAR)
  examples = lambda ids: tf.constant([ml100k_rating(u, '50').SerializeToString() for u in ids])
  for _, export_dir in exported.values():
    features = tf.saved_model.load(export_dir).signatures['transformed_features']
    batch = features(examples=examples(users))
    for i, user in enumerate(users):
      alone = features(examples=examples([user]))
      for name in lists:
        assert batch[name].numpy()[i] == alone[name].numpy()[0]
      assert batch[ranking_metrics.TRAINED_MOVIES].numpy()[i] == alone[
          ranking_metrics.TRAINED_MOVIES].numpy()[0]
    recommended = batch[ranking_metrics.RECOMMENDED].numpy()
    assert len(recommended[0].split()) == ranking_metrics.MAX_K
    assert recommended[0] != recommended[1]  # two users, two lists
