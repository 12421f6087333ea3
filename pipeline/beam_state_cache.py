"""Beam's in-process state cache, without a scan of every loaded module per cached value.

The DirectRunner's SDK harness caches side inputs (Transform's analyzer results, TFMA's and
TFDV's shared state) and weighs each cached value with `objsize.get_deep_size`, which by default
first walks everything reachable from the globals of *every loaded module* to exclude it. With
TensorFlow, TFX and Beam loaded that is hundreds of thousands of objects, walked again for every
value cached: about a fifth of Transform's Python time on ML-100K in a py-spy profile of a local
run (`objsize.traverse._update_exclude_set`).

Beam's own filter already leaves out what module globals hold that values share (types, modules,
functions), so the weights stay what they were for plain values (arrays, lists, dicts); the
cache's size bound is unchanged. `apply()` is idempotent and local to this process; on other
runners the workers are separate processes and keep Beam's default.
"""

import objsize
from apache_beam.runners.worker import statecache

_original = statecache.get_deep_size


def _get_deep_size(*objs) -> int:
  return objsize.get_deep_size(
      *objs,
      get_size_func=statecache._size_func,  # pylint: disable=protected-access
      get_referents_func=statecache._get_referents_func,  # pylint: disable=protected-access
      filter_func=statecache._filter_func,  # pylint: disable=protected-access
      exclude_modules_globals=False)


def apply() -> None:
  statecache.get_deep_size = _get_deep_size


def restore() -> None:
  statecache.get_deep_size = _original
