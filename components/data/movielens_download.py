"""Fetches an official MovieLens archive from GroupLens, verified, into a user cache folder.

GroupLens publishes an `.md5` file beside each zip; the archive is only unpacked (and only
becomes visible in the cache) after its MD5 matches. Offline with no cached copy, the error
says how to point the pipeline at a local folder instead.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
import zipfile
from typing import Callable, Optional

from components import atomic_files
from components.data import movielens_formats as formats

BASE_URL = 'https://files.grouplens.org/datasets/movielens'
ARCHIVES = {  # dataset -> archive name on GroupLens
    formats.ML_100K: 'ml-100k',
    formats.ML_1M: 'ml-1m',
    formats.ML_10M: 'ml-10m',  # unpacks to ml-10M100K/
    formats.ML_LATEST: 'ml-latest-small',
}

Fetch = Callable[[str], bytes]


class DownloadError(RuntimeError):
  """The archive could not be fetched or verified; the message says what to do instead."""


def default_cache_dir() -> str:
  root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(root, 'movielens-recommender')


def _fetch_url(url: str) -> bytes:
  with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https URL)
    return response.read()


def parse_md5(text: str, url: str) -> str:
  """Pulls the hex digest out of an md5 file (`MD5 (x.zip) = <hex>` or `<hex>  x.zip`)."""
  match = re.search(r'\b([0-9a-fA-F]{32})\b', text)
  if not match:
    raise DownloadError(f'{url}: no MD5 digest found in the checksum file')
  return match.group(1).lower()


def cached_dataset_dir(dataset: str, cache_dir: Optional[str] = None) -> Optional[str]:
  """The cached, verified copy of `dataset`, or None when there is none yet."""
  folder = os.path.join(cache_dir or default_cache_dir(), ARCHIVES[dataset])
  return folder if os.path.isdir(folder) else None


def download_dataset(dataset: str, cache_dir: Optional[str] = None,
                     fetch: Fetch = _fetch_url, base_url: str = BASE_URL) -> str:
  """Returns a folder holding `dataset`, downloading and verifying it on first use."""
  cache_dir = cache_dir or default_cache_dir()
  name = ARCHIVES[dataset]
  target = os.path.join(cache_dir, name)
  if os.path.isdir(target):
    return target
  zip_url, md5_url = f'{base_url}/{name}.zip', f'{base_url}/{name}.zip.md5'
  try:
    expected = parse_md5(fetch(md5_url).decode('ascii', 'replace'), md5_url)
    payload = fetch(zip_url)
  except (urllib.error.URLError, OSError) as e:
    raise DownloadError(
        f'could not download {zip_url} ({e}). Without a network, download the archive '
        f'elsewhere, unpack it and pass its folder with --data-dir (or MOVIELENS_DIR=... make run).'
    ) from None
  if not payload:
    raise DownloadError(f'{zip_url}: the download is empty (0 bytes)')
  actual = hashlib.md5(payload).hexdigest()  # noqa: S324 (GroupLens publishes MD5 only)
  if actual != expected:
    raise DownloadError(f'{zip_url}: checksum mismatch: MD5 {actual}, GroupLens publishes {expected}')
  try:  # the cache shows a complete folder or none
    with atomic_files.publish_folder(target) as staged:
      archive_path = os.path.join(staged.path, f'{name}.zip')
      with open(archive_path, 'wb') as f:
        f.write(payload)
      with zipfile.ZipFile(archive_path) as archive:
        for member in archive.namelist():
          resolved = os.path.realpath(os.path.join(staged.path, member))
          if not resolved.startswith(os.path.realpath(staged.path) + os.sep):
            raise DownloadError(f'{zip_url}: archive member {member!r} escapes the folder')
        archive.extractall(staged.path)
      staged.publish = formats.resolve_data_dir(staged.path)
      formats.detect_dataset(staged.publish)  # the archive holds what we expect
  except zipfile.BadZipFile:
    raise DownloadError(f'{zip_url}: not a valid zip archive') from None
  return target
