"""Synthetic MovieLens data of any size, in the MovieLens latest/25M format: for scale benchmarks.

    python -m bench.synth --ratings 1000000 --output /tmp/synth-1m [--seed 42]

Writes `ratings.csv` (userId,movieId,rating,timestamp; half stars 0.5..5.0) and `movies.csv`
(movieId,title,genres) with the structure that makes MovieLens what it is:
- sizes: about 154 ratings per user and 62,423 * (N / 25M)^0.7 movies, so 25M ratings give
  about 162K users and 62K movies, like ML-25M;
- power laws: movie popularity is Zipf-like (the most rated movies take a large share), user
  activity Pareto-distributed with at least 20 ratings each, as in MovieLens;
- learnable ratings: rating = global + user bias + movie bias + <user factors, movie factors> +
  noise, rounded to half stars, so models have something to find (and beat the bias baseline);
- genres that follow the movie factors (similar movies share genres), release years in titles,
  timestamps after each user's first visit.
Seeded: the same arguments write the same bytes. Streamed: users are generated and written in
chunks, so memory does not grow with N (only the movie tables, O(movies)). Each file is
written under a temporary name and renamed into place.
"""

import argparse
import os
import sys
import time

import numpy as np

from components import atomic_files

GENRES = ('Action', 'Adventure', 'Animation', 'Children', 'Comedy', 'Crime', 'Documentary',
          'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'IMAX', 'Musical', 'Mystery', 'Romance',
          'Sci-Fi', 'Thriller', 'War', 'Western')
RATINGS_PER_USER = 154          # ML-25M: 25,000,095 ratings / 162,541 users
MOVIES_AT_25M = 62423
MIN_RATINGS_PER_USER = 20
FACTORS = 8
CHUNK_USERS = 4096


def sizes(ratings: int):
  """(users, movies) for `ratings` ratings."""
  users = max(10, round(ratings / RATINGS_PER_USER))
  movies = max(50, round(MOVIES_AT_25M * (ratings / 25_000_000) ** 0.7))
  return users, movies


def _activity(rng, users: int, ratings: int, movies: int) -> np.ndarray:
  """Ratings per user: 20 each plus a Pareto-distributed share of the rest, at most half the
  movies (the share a capped user cannot take goes to the others, by their weights)."""
  weight = rng.pareto(1.2, users) + 1e-3
  cap = max(MIN_RATINGS_PER_USER, movies // 2)
  extra = np.zeros(users)
  left = float(max(ratings - MIN_RATINGS_PER_USER * users, 0))
  open_ = np.ones(users, bool)
  while left > 0.5 and open_.any():  # water-filling: fill by weight, freeze who hits the cap
    share = np.where(open_, weight, 0.0)
    extra += left * share / share.sum()
    over = extra > cap - MIN_RATINGS_PER_USER
    left = float((extra[over] - (cap - MIN_RATINGS_PER_USER)).sum())
    extra[over] = cap - MIN_RATINGS_PER_USER
    open_ &= ~over
  counts = MIN_RATINGS_PER_USER + np.floor(extra).astype(np.int64)
  shortfall = ratings - int(counts.sum())  # the rounding remainder: one more for some users
  room = np.flatnonzero(counts < cap)
  counts[rng.choice(room, size=min(max(shortfall, 0), len(room)), replace=False)] += 1
  return counts


def _movies(rng, movies: int):
  """Movie factors, biases, popularity (cumulative weights) and the movies.csv rows."""
  factors = rng.normal(0.0, 1.0, (movies, FACTORS)).astype(np.float32)
  bias = rng.normal(0.0, 0.35, movies).astype(np.float32)
  order = rng.permutation(movies)  # popularity rank is not the id order
  weights = np.empty(movies)
  weights[order] = 1.0 / np.arange(1, movies + 1) ** 0.9
  cumulative = np.cumsum(weights / weights.sum())
  # Genres from the factors: each genre a direction; a movie has the 1-3 best matching ones.
  directions = rng.normal(0.0, 1.0, (len(GENRES), FACTORS))
  affinity = factors @ directions.T + rng.gumbel(0.0, 0.5, (movies, len(GENRES)))
  count = rng.choice([1, 2, 3], size=movies, p=[0.4, 0.4, 0.2])
  best = np.argsort(-affinity, axis=1)
  years = rng.integers(1920, 2021, movies)
  rows = [f'{m + 1},"Synthetic Movie {m + 1} ({years[m]})",'
          + '|'.join(GENRES[g] for g in sorted(best[m, :count[m]])) for m in range(movies)]
  return factors, bias, cumulative, rows


def _write_atomically(path: str, chunks) -> None:
  with atomic_files.replace(path) as f:
    for chunk in chunks:
      f.write(chunk)


def _rating_chunks(rng, counts, factors, bias, cumulative):
  """ratings.csv text, a chunk of users at a time."""
  yield 'userId,movieId,rating,timestamp\n'
  movies = len(bias)
  start, end = 789_652_009, 1_574_327_703  # ML-25M's first and last timestamps
  for first in range(0, len(counts), CHUNK_USERS):
    chunk = counts[first:first + CHUNK_USERS]
    user_factors = rng.normal(0.0, 1.0, (len(chunk), FACTORS)).astype(np.float32)
    user_bias = rng.normal(0.0, 0.4, len(chunk)).astype(np.float32)
    lines = []
    for i, count in enumerate(chunk):
      # Popular movies more often; draws with replacement, deduplicated, topped up.
      picked = np.unique(np.searchsorted(cumulative, rng.random(int(count * 1.3) + 8)))
      while len(picked) < count:
        extra = np.searchsorted(cumulative, rng.random(int(count) + 8))
        picked = np.unique(np.concatenate([picked, extra]))
      picked = rng.permutation(np.minimum(picked, movies - 1))[:count]
      score = (3.55 + user_bias[i] + bias[picked] + 0.45 * factors[picked] @ user_factors[i]
               / np.sqrt(FACTORS) * 2.0 + rng.normal(0.0, 0.6, count))
      rating = np.clip(np.round(score * 2.0) / 2.0, 0.5, 5.0)
      first_visit = rng.integers(start, end - 86_400)
      stamps = np.sort(first_visit + (rng.exponential(0.05, count) * (end - first_visit))
                       .astype(np.int64).clip(0, end - first_visit))
      user = first + i + 1
      lines.extend(f'{user},{m + 1},{r:g},{t}\n' for m, r, t in
                   zip(picked.tolist(), rating.tolist(), stamps.tolist()))
    yield ''.join(lines)


def write(output: str, ratings: int, seed: int = 42) -> dict:
  """Writes the dataset to `output`; returns its sizes."""
  if ratings < 1000:
    raise ValueError(f'--ratings must be at least 1000, got {ratings}')
  os.makedirs(output, exist_ok=True)
  rng = np.random.default_rng(seed)
  users, movies = sizes(ratings)
  factors, bias, cumulative, movie_rows = _movies(rng, movies)
  counts = _activity(rng, users, ratings, movies)
  _write_atomically(os.path.join(output, 'movies.csv'),
                    ['movieId,title,genres\n', '\n'.join(movie_rows) + '\n'])
  _write_atomically(os.path.join(output, 'ratings.csv'),
                    _rating_chunks(rng, counts, factors, bias, cumulative))
  return {'ratings': int(counts.sum()), 'users': users, 'movies': movies}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m bench.synth', description=__doc__.split('\n')[0])
  parser.add_argument('--ratings', type=int, required=True, help='how many ratings, e.g. 1000000')
  parser.add_argument('--output', required=True, help='the folder to write (created)')
  parser.add_argument('--seed', type=int, default=42)
  args = parser.parse_args(argv)
  started = time.monotonic()
  try:
    result = write(args.output, args.ratings, args.seed)
  except (ValueError, OSError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f"{result['ratings']} ratings of {result['users']} users on {result['movies']} movies "
        f'-> {args.output} in {time.monotonic() - started:.1f} s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
