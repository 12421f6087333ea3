"""The stored training ratings of a batch's users, as flat positions and their rows.

Both models keep each user's training ratings sorted by user, with `splits` [users + 1] marking
where each user's ratings start. A step needs the positions of its distinct users' ratings and
the row (distinct user) of each. `tf.ragged.range(...).value_rowids()` builds those rows through
a [users, longest history] mask, which on power-law data (a few users with thousands of ratings)
dominated a training step: 27 of 100 ms at 1M synthetic ratings (TF profiler). A binary search
of each position in the row splits costs O(ratings x log users) instead.
"""

from typing import Tuple

import tensorflow as tf


def user_entries(splits: tf.Tensor, distinct: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor,
                                                                   tf.Tensor]:
  """(positions [N] of the stored ratings of users `distinct` [U], in order; the row [N] in
  `distinct` of each; row splits [U + 1] of the positions), all int64."""
  row_splits, positions = tf.raw_ops.RaggedRange(
      starts=tf.gather(splits, distinct), limits=tf.gather(splits, distinct + 1),
      deltas=tf.constant(1, tf.int64), Tsplits=tf.int64)
  rows = tf.searchsorted(row_splits[1:], tf.range(tf.shape(positions, out_type=tf.int64)[0]),
                         side='right', out_type=tf.int64)
  return positions, rows, row_splits


def sampled_user_entries(splits: tf.Tensor, distinct: tf.Tensor, cap: int):
  """Like `user_entries`, but at most `cap` stored ratings per user: for a user with n > cap
  ratings, a systematic sample of `cap` of them (every n/cap-th, from a random offset drawn per
  call), so each rating is in the sample with probability cap/n and none twice; users with at
  most `cap` ratings keep all of them, in order.

  Returns (positions, rows, row_splits, locate): `locate(stored, rows_of)` gives, for stored
  positions [K] of users at rows `rows_of` [K], (whether each is in the sample [K], its index
  in `positions` [K], valid where it is).

  The training step's cost grows with the stored ratings of a batch's users; on heavy-tailed
  data the most active users dominate it (a random batch of 512 of the synthetic 10M touches
  908,552 stored ratings, 237,070 with a cap of 1024)."""
  starts = tf.gather(splits, distinct)
  lengths = tf.gather(splits, distinct + 1) - starts
  slots = tf.minimum(lengths, cap)
  stride = tf.cast(lengths, tf.float64) / tf.cast(tf.maximum(slots, 1), tf.float64)
  offset = tf.random.uniform(tf.shape(distinct), dtype=tf.float64)
  row_splits, slot = tf.raw_ops.RaggedRange(
      starts=tf.zeros_like(slots), limits=slots, deltas=tf.constant(1, tf.int64),
      Tsplits=tf.int64)
  rows = tf.searchsorted(row_splits[1:], tf.range(tf.shape(slot, out_type=tf.int64)[0]),
                         side='right', out_type=tf.int64)

  def position_of(slot_index, row):
    return tf.gather(starts, row) + tf.cast(tf.floor(
        (tf.cast(slot_index, tf.float64) + tf.gather(offset, row)) * tf.gather(stride, row)),
        tf.int64)

  def locate(stored, rows_of):
    within = tf.cast(stored - tf.gather(starts, rows_of), tf.float64)
    guess = tf.cast(tf.math.ceil(within / tf.gather(stride, rows_of)
                                 - tf.gather(offset, rows_of)), tf.int64)
    found, index = tf.zeros_like(stored, tf.bool), tf.zeros_like(stored)
    for candidate in (guess - 1, guess):  # float rounding can put the slot one below
      hit = ((candidate >= 0) & (candidate < tf.gather(slots, rows_of))
             & (position_of(candidate, rows_of) == stored))
      found, index = found | hit, tf.where(hit, tf.gather(row_splits, rows_of) + candidate,
                                           index)
    return found, index

  return position_of(slot, rows), rows, row_splits, locate
