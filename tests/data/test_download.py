"""The GroupLens download: checksum verification, atomic cache, offline message.

Served by a real HTTP server on 127.0.0.1 (the product talks to GroupLens the same way).
"""

import hashlib
import http.server
import io
import os
import threading
import zipfile

import pytest

from components.data import ingestion
from components.data import movielens_download as download
from components.data import movielens_formats as formats
from tests import movielens_fixtures as fx


def _zip_of(folder, prefix='ml-100k'):
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, 'w') as archive:
    for name in sorted(os.listdir(folder)):
      archive.write(os.path.join(folder, name), f'{prefix}/{name}')
  return buffer.getvalue()


@pytest.fixture
def grouplens(tmp_path):
  """A local server with `files` (name -> bytes) under /datasets/movielens/."""
  files = {}

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
      name = self.path.rsplit('/', 1)[-1]
      if name not in files:
        self.send_error(404)
        return
      self.send_response(200)
      self.send_header('Content-Length', str(len(files[name])))
      self.end_headers()
      self.wfile.write(files[name])

    def log_message(self, *args):
      pass

  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield files, f'http://127.0.0.1:{server.server_port}/datasets/movielens'
  server.shutdown()
  server.server_close()


def _fetch(url):
  return download._fetch_url(url)  # pylint: disable=protected-access


def test_downloads_verifies_and_caches(tmp_path, grouplens):
  files, base_url = grouplens
  payload = _zip_of(fx.ml100k(tmp_path / 'src'))
  files['ml-100k.zip'] = payload
  files['ml-100k.zip.md5'] = f'MD5 (ml-100k.zip) = {hashlib.md5(payload).hexdigest()}\n'.encode()
  cache = str(tmp_path / 'cache')
  folder = download.download_dataset(formats.ML_100K, cache, base_url=base_url)
  assert folder == os.path.join(cache, 'ml-100k')
  assert formats.read_movielens(folder).dataset == formats.ML_100K
  assert os.listdir(cache) == ['ml-100k']  # no staging left over
  files.clear()  # a second call must not touch the network
  assert download.download_dataset(formats.ML_100K, cache, base_url=base_url) == folder


def test_ml10m_archive_unpacks_under_its_own_folder_name(tmp_path, grouplens):
  files, base_url = grouplens  # ml-10m.zip holds ml-10M100K/, not ml-10m/
  payload = _zip_of(fx.ml10m(tmp_path / 'src'), prefix='ml-10M100K')
  files['ml-10m.zip'] = payload
  files['ml-10m.zip.md5'] = f'{hashlib.md5(payload).hexdigest()}  ml-10m.zip\n'.encode()
  cache = str(tmp_path / 'cache')
  folder = download.download_dataset(formats.ML_10M, cache, base_url=base_url)
  assert folder == os.path.join(cache, 'ml-10m')
  assert sorted(os.listdir(folder)) == ['movies.dat', 'ratings.dat', 'tags.dat']
  assert formats.read_movielens(folder).dataset == formats.ML_10M


def test_checksum_mismatch_is_rejected(tmp_path, grouplens):
  files, base_url = grouplens
  files['ml-100k.zip'] = _zip_of(fx.ml100k(tmp_path / 'src'))
  files['ml-100k.zip.md5'] = b'0123456789abcdef0123456789abcdef  ml-100k.zip\n'
  cache = tmp_path / 'cache'
  with pytest.raises(download.DownloadError, match='checksum mismatch'):
    download.download_dataset(formats.ML_100K, str(cache), base_url=base_url)
  assert not (cache / 'ml-100k').exists()


def test_empty_download_is_rejected(tmp_path, grouplens):
  files, base_url = grouplens
  files['ml-100k.zip'] = b''
  files['ml-100k.zip.md5'] = f'{hashlib.md5(b"").hexdigest()}\n'.encode()
  with pytest.raises(download.DownloadError, match=r'empty \(0 bytes\)'):
    download.download_dataset(formats.ML_100K, str(tmp_path / 'cache'), base_url=base_url)


def test_offline_says_how_to_use_a_local_folder(tmp_path):
  with pytest.raises(download.DownloadError, match='--data-dir'):
    download.download_dataset(formats.ML_100K, str(tmp_path / 'cache'),
                              base_url='http://127.0.0.1:9/nothing-listens-here')


def test_ingestion_uses_the_cached_copy_when_no_folder_is_given(tmp_path):
  cache = tmp_path / 'cache'
  fx.ml100k(cache / 'ml-100k')
  prepared = ingestion.prepare_examples(
      ingestion.IngestionOptions(cache_dir=str(cache)), str(tmp_path / 'out'))
  assert prepared.dataset == formats.ML_100K
  assert sum(prepared.info['num_ratings'].values()) == len(fx.ML_100K_RATINGS)
