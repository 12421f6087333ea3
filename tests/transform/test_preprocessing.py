"""`preprocessing_fn` through tf.Transform's Beam implementation, on a few rows."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import schema_utils

from components.data import features as f
from components.transform import preprocessing
from pipeline import schema as schema_lib

ROWS = [
    dict(user_id=b'1', movie_id=b'10', rating=5.0, timestamp=1, age=24, gender=b'M',
         occupation=b'technician', zip_code=b'85711', title=b'Toy Story (1995)',
         release_year=1995, genres=b'Animation|Comedy'),
    dict(user_id=b'2', movie_id=b'10', rating=4.0, timestamp=2, age=53, gender=b'F',
         occupation=b'other', zip_code=b'01002', title=b'Toy Story (1995)',
         release_year=1995, genres=b'Animation|Comedy'),
    dict(user_id=b'2', movie_id=b'20', rating=2.0, timestamp=3, age=53, gender=b'F',
         occupation=b'other', zip_code=b'01002', title=b'Story of Us, The (1999)',
         release_year=0, genres=b'Drama'),
]
UNSEEN = dict(ROWS[0], user_id=b'999', movie_id=b'777', genres=b'Western|Comedy',
              occupation=b'astronaut', title=b'Brand New Film (2024)', release_year=2024)


def _as_batch(rows, names):
  """Rows -> the [B, 1] dense inputs that a schema feature of shape [1] parses to."""
  return [{k: [row[k]] for k in names} for row in rows]


def _analyze_and_transform(schema, rows, new_rows):
  spec = schema_utils.schema_as_feature_spec(schema).feature_spec
  metadata = tft.DatasetMetadata.from_feature_spec(spec)
  with tempfile.TemporaryDirectory() as temp, tft_beam.Context(temp_dir=temp):
    (transformed, _), transform_fn = (
        (_as_batch(rows, spec), metadata)
        | tft_beam.AnalyzeAndTransformDataset(preprocessing.preprocessing_fn))
    new, _ = ((_as_batch(new_rows, spec), metadata), transform_fn) | tft_beam.TransformDataset()
    output_dir = os.path.join(temp, 'out')
    _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    vocab = tft.TFTransformOutput(output_dir)
    vocabularies = {name: vocab.vocabulary_by_name(name)
                    for name in (f.USER_VOCAB, f.MOVIE_VOCAB, f.GENRE_VOCAB)}
  return transformed, new, vocabularies


def test_vocabularies_oov_and_padded_tokens():
  schema = schema_lib.schema_for_dataset(True, 1.0, 5.0)
  transformed, new, vocab = _analyze_and_transform(schema, ROWS, [UNSEEN])
  users = [v.decode() for v in vocab[f.USER_VOCAB]]
  movies = [v.decode() for v in vocab[f.MOVIE_VOCAB]]
  assert sorted(users) == ['1', '2'] and sorted(movies) == ['10', '20']
  # Known IDs map to their vocabulary position; unseen ones to the single OOV bucket.
  assert [r[f.USER_INDEX] for r in transformed] == [users.index(u) for u in ('1', '2', '2')]
  assert new[0][f.USER_INDEX] == len(users)
  assert new[0][f.MOVIE_INDEX] == len(movies)
  assert new[0][f.OCCUPATION_ID] == 2  # two known occupations, then OOV
  # Genres: ids shifted by one, 0 is padding, unknown genre -> OOV (V + 1).
  genres = [g.decode() for g in vocab[f.GENRE_VOCAB]]
  first = list(transformed[0][f.GENRE_IDS])
  assert len(first) == f.MAX_GENRES and first[2:] == [0] * (f.MAX_GENRES - 2)
  assert sorted(first[:2]) == sorted(genres.index(g) + 1 for g in ('Animation', 'Comedy'))
  assert list(new[0][f.GENRE_IDS][:2]) == [len(genres) + 1, genres.index('Comedy') + 1]
  # Release decade: 0 for an unknown year; age buckets from the fixed boundaries.
  assert transformed[2][f.RELEASE_BUCKET] == 0
  assert transformed[0][f.RELEASE_BUCKET] == transformed[1][f.RELEASE_BUCKET] > 0
  assert [r[f.AGE_BUCKET] for r in transformed] == [1, 5, 5]  # 24 -> 18..24, 53 -> 50..55
  assert [r[f.LABEL] for r in transformed] == pytest.approx([5.0, 4.0, 2.0])
  assert np.asarray(transformed[0][f.TITLE_TOKEN_IDS]).shape == (f.MAX_TITLE_TOKENS,)


def test_without_demographics_only_movie_features_are_made():
  schema = schema_lib.schema_for_dataset(False, 0.5, 5.0)
  rows = [{k: v for k, v in row.items() if k not in f.DEMOGRAPHIC_FEATURES} for row in ROWS]
  transformed, _, _ = _analyze_and_transform(schema, rows, rows[:1])
  assert f.AGE_BUCKET not in transformed[0] and f.GENDER_ID not in transformed[0]
  assert {f.USER_INDEX, f.MOVIE_INDEX, f.GENRE_IDS, f.TITLE_TOKEN_IDS} <= set(transformed[0])


def test_schema_for_dataset_adapts_the_curated_schema():
  full = schema_lib.schema_for_dataset(True, 1.0, 5.0)
  assert {x.name for x in full.feature} == set(f.RAW_FEATURE_TYPES)
  latest = schema_lib.schema_for_dataset(False, 0.5, 5.0)
  assert not {x.name for x in latest.feature} & set(f.DEMOGRAPHIC_FEATURES)
  rating = next(x for x in latest.feature if x.name == f.LABEL)
  assert (rating.float_domain.min, rating.float_domain.max) == (0.5, 5.0)
  assert not latest.string_domain  # the gender domain went with the feature
