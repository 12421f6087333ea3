"""The feature contract shared by ingestion, ExampleGen, Transform, the models and evaluation.

Every raw column has a declared type: CsvExampleGen would otherwise infer types per split from
the values it happens to see (a zip code column of digits becomes INT in one split and BYTES in
another, IDs become integers), and the curated schema could not be met reliably.
"""

STRING, INT, FLOAT = 'STRING', 'INT', 'FLOAT'

LABEL = 'rating'
USER_ID = 'user_id'
MOVIE_ID = 'movie_id'
TIMESTAMP = 'timestamp'
AGE, GENDER, OCCUPATION, ZIP_CODE = 'age', 'gender', 'occupation', 'zip_code'
TITLE, RELEASE_YEAR, GENRES = 'title', 'release_year', 'genres'

# Raw CSV columns in file order, with their types. IDs are strings: they are identifiers,
# looked up in vocabularies, never numbers to compute with.
RAW_FEATURE_TYPES = {
    USER_ID: STRING,
    MOVIE_ID: STRING,
    LABEL: FLOAT,
    TIMESTAMP: INT,
    AGE: INT,
    GENDER: STRING,
    OCCUPATION: STRING,
    ZIP_CODE: STRING,
    TITLE: STRING,
    RELEASE_YEAR: INT,
    GENRES: STRING,
}
# Present only where the dataset has a users file (ML-100K, ML-1M; not ML-latest).
DEMOGRAPHIC_FEATURES = (AGE, GENDER, OCCUPATION, ZIP_CODE)

GENRE_SEPARATOR = '|'
MAX_GENRES = 12        # genres kept per movie (MovieLens has at most 10)
MAX_TITLE_TOKENS = 8   # title words kept per movie
AGE_BOUNDARIES = (18, 25, 35, 45, 50, 56)  # the ML-1M age groups, applied to exact ages too
ZIP_PREFIX_LENGTH = 3

# Transformed feature names (the model's inputs).
USER_INDEX = 'user_index'
MOVIE_INDEX = 'movie_index'
GENRE_IDS = 'genre_ids'
TITLE_TOKEN_IDS = 'title_token_ids'
RELEASE_BUCKET = 'release_bucket'  # decade bucket, 0 = unknown year
NUM_RELEASE_BUCKETS = 12             # 0 unknown, 1 before 1930, ..., 11 from 2020
AGE_BUCKET = 'age_bucket'
GENDER_ID = 'gender_id'
OCCUPATION_ID = 'occupation_id'
ZIP_PREFIX_ID = 'zip_prefix_id'

# Vocabulary files written by Transform, by name.
USER_VOCAB, MOVIE_VOCAB = 'user_id', 'movie_id'
GENRE_VOCAB, TITLE_VOCAB = 'genres', 'title_tokens'
GENDER_VOCAB, OCCUPATION_VOCAB, ZIP_VOCAB = 'gender', 'occupation', 'zip_prefix'
OOV_BUCKETS = 1


def raw_columns(has_demographics: bool):
  """The raw CSV header for a dataset with or without user demographics."""
  return [c for c in RAW_FEATURE_TYPES if has_demographics or c not in DEMOGRAPHIC_FEATURES]
