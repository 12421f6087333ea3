"""What a person would look at before trusting a model: a few users' lists, as served.

For three seeded eval users (each with training and eval ratings), their five best-rated
training movies, each trained model's top 10 from its `recommend` signature (the SavedModel
loaded the way TF Serving loads it) and the top 10 the same user would get as a new user who
sent only those five ratings (`recommend_new_user`), with the movies the user rated in eval
marked as hits. The run summary holds them and the report shows them beside each other.
"""

import csv
import glob
import os
from typing import Dict, List

import numpy as np

from components.data import features as f

USERS = 3
BEST_RATED = 5
TOP_K = 10
SEED = 42


def _rows(input_base: str, split: str):
  """The split's ratings (every CSV file of `input_base/split/`), streamed as dicts of text."""
  paths = sorted(glob.glob(os.path.join(input_base, split, '*.csv')))
  if not paths:
    raise FileNotFoundError(f'{os.path.join(input_base, split)}: no CSV files')
  for path in paths:
    with open(path, encoding='utf-8', newline='') as f:
      yield from csv.DictReader(f)


def pick_users(input_base: str, users: int = USERS, seed: int = SEED,
               candidates: int = 50) -> List[Dict]:
  """`users` seeded eval users who also rated in training: their id, their best-rated training
  movies (rating, then title, descending) and the movie ids they rated in eval. Streams the
  splits and keeps only `candidates` users' rows, so it costs no memory at 25M ratings."""
  evaluated: Dict[str, set] = {}
  for row in _rows(input_base, 'eval'):
    evaluated.setdefault(row[f.USER_ID], set()).add(row[f.MOVIE_ID])
  order = sorted(evaluated, key=lambda u: (len(u), u))
  drawn = [order[i] for i in np.random.default_rng(seed).permutation(len(order))[:candidates]]
  rated: Dict[str, List] = {user: [] for user in drawn}
  for row in _rows(input_base, 'train'):
    if row[f.USER_ID] in rated:
      rated[row[f.USER_ID]].append((float(row[f.LABEL]), row[f.TITLE], row[f.MOVIE_ID]))
  chosen = sorted([u for u in drawn if rated[u]][:users], key=order.index)
  picked = []
  for user in chosen:
    best = sorted(rated[user], key=lambda r: (-r[0], r[1]))[:BEST_RATED]
    picked.append({
        'user_id': user,
        'training_ratings': len(rated[user]),
        'best_rated': [{'movie_id': m, 'title': t, 'rating': r} for r, t, m in best],
        'eval_movie_ids': sorted(evaluated[user]),
    })
  return picked


def top_lists(saved_model_dir: str, users: List[Dict], k: int = TOP_K) -> List[Dict]:
  """Each user's top `k` from the model's `recommend` signature and, as a new user who sends
  only their five best-rated movies, from `recommend_new_user` (where the model has it and
  every user has `best_rated`); hits (eval movies) marked."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from serving import client  # pylint: disable=import-outside-toplevel
  signatures = tf.saved_model.load(saved_model_dir).signatures

  def call(name, inputs):
    outputs = client.call_loaded(signatures[name], inputs)
    lists = []
    for user, ids, titles, scores in zip(users, outputs['movie_ids'], outputs['titles'],
                                         outputs['scores']):
      hits = set(user['eval_movie_ids'])
      lists.append([{'movie_id': m.decode(), 'title': t.decode(), 'score': float(s),
                     'hit': m.decode() in hits} for m, t, s in zip(ids, titles, scores) if m])
    return lists

  ask = {'k': [k] * len(users), 'exclude_movie_ids': [['']] * len(users)}
  known = call('recommend', {'user_id': [u['user_id'] for u in users], **ask})
  new = [None] * len(users)
  if 'recommend_new_user' in signatures and all(u.get('best_rated') for u in users):
    sent = lambda key: [[b[key] for b in u['best_rated']] for u in users]  # padded by the client
    new = call('recommend_new_user', {**ask, 'rated_movie_ids': sent('movie_id'),
                                      'rated_ratings': sent('rating')})
  return [{'user_id': user['user_id'], 'top': top, 'as_new_user': as_new}
          for user, top, as_new in zip(users, known, new)]
