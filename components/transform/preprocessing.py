"""The Transform step: ID vocabularies with an OOV bucket, genre and title tokens, demographics.

Everything a model looks up is turned into a dense integer index here, once, so that the same
mapping is baked into the exported serving graph (unseen IDs land in the OOV bucket instead of
failing). Demographic features are transformed only when the dataset has them.
"""

import tensorflow as tf
import tensorflow_transform as tft

from components.data import features as f

_RELEASE_YEAR_BOUNDARIES = [float(y) for y in range(1930, 2030, 10)]
_TITLE_YEAR = r'\(\d{4}\)'
_NON_WORD = r'[^a-z0-9]+'


def _flat(tensor: tf.Tensor) -> tf.Tensor:
  """[B, 1] (a schema feature of shape [1]) -> [B]."""
  return tf.reshape(tensor, [-1])


def _vocab_index(values: tf.Tensor, name: str, **kwargs) -> tf.Tensor:
  return tft.compute_and_apply_vocabulary(values, num_oov_buckets=f.OOV_BUCKETS,
                                          vocab_filename=name, **kwargs)


def _padded_token_ids(tokens: tf.RaggedTensor, name: str, width: int, **kwargs) -> tf.Tensor:
  """Vocabulary ids of ragged tokens, shifted by one and zero-padded to [B, width].

  0 is padding (models mask it); ids 1..V are the vocabulary and V+1 the OOV bucket.
  """
  ids = _vocab_index(tokens, name, **kwargs)
  ids = tf.ragged.map_flat_values(tf.add, ids, tf.constant(1, tf.int64))
  return ids.to_tensor(default_value=0, shape=[None, width])


def preprocessing_fn(inputs):
  """tf.Transform entry point: raw features (see schema/schema.pbtxt) -> model inputs."""
  raw = {name: _flat(value) for name, value in inputs.items()}
  out = {
      f.USER_INDEX: _vocab_index(raw[f.USER_ID], f.USER_VOCAB),
      f.MOVIE_INDEX: _vocab_index(raw[f.MOVIE_ID], f.MOVIE_VOCAB),
      f.LABEL: tf.cast(raw[f.LABEL], tf.float32),
  }

  genres = tf.strings.split(raw[f.GENRES], f.GENRE_SEPARATOR)
  out[f.GENRE_IDS] = _padded_token_ids(genres, f.GENRE_VOCAB, f.MAX_GENRES)

  title = tf.strings.lower(raw[f.TITLE])
  title = tf.strings.regex_replace(title, _TITLE_YEAR, ' ')
  title = tf.strings.strip(tf.strings.regex_replace(title, _NON_WORD, ' '))
  out[f.TITLE_TOKEN_IDS] = _padded_token_ids(
      tf.strings.split(title), f.TITLE_VOCAB, f.MAX_TITLE_TOKENS, frequency_threshold=2)

  # Decade buckets 1..N for known years; 0 where the dataset has no release date.
  year = tf.cast(raw[f.RELEASE_YEAR], tf.float32)
  bucket = tft.apply_buckets(year, tf.constant([_RELEASE_YEAR_BOUNDARIES])) + 1
  out[f.RELEASE_BUCKET] = tf.where(raw[f.RELEASE_YEAR] > 0, bucket, tf.zeros_like(bucket))

  if f.AGE in raw:  # demographics: ML-100K and ML-1M only
    out[f.AGE_BUCKET] = tft.apply_buckets(tf.cast(raw[f.AGE], tf.float32),
                                          tf.constant([[float(a) for a in f.AGE_BOUNDARIES]]))
    out[f.GENDER_ID] = _vocab_index(raw[f.GENDER], f.GENDER_VOCAB)
    out[f.OCCUPATION_ID] = _vocab_index(raw[f.OCCUPATION], f.OCCUPATION_VOCAB)
    zip_prefix = tf.strings.substr(raw[f.ZIP_CODE], 0, f.ZIP_PREFIX_LENGTH)
    out[f.ZIP_PREFIX_ID] = _vocab_index(zip_prefix, f.ZIP_VOCAB)
  return out
