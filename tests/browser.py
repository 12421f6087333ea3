"""Renders a local HTML page in headless Chromium (Debian's `chromium`; `make test` installs it)
and returns the DOM after load, with how many of its images loaded."""

import os
import re
import shutil
import subprocess
import tempfile
from typing import Tuple

CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync')
# Appended to a copy of the page: after load, counts the images that actually decoded.
_CHECK = ('<script>window.addEventListener("load", () => {const images = [...document.images];'
          'document.body.dataset.images = images.length; document.body.dataset.loaded = '
          'images.filter(i => i.complete && i.naturalWidth > 0).length;});</script>')


def render(page: str) -> Tuple[str, int, int]:
  """(DOM after load, number of <img>, number that loaded) of the HTML file `page`."""
  if not os.access(CHROMIUM, os.X_OK):
    raise AssertionError(f'{CHROMIUM} not found: `make test` installs Debian\'s chromium '
                         '(or set CHROMIUM to a Chromium binary)')
  with open(page, encoding='utf-8') as f:
    text = f.read()
  probe = os.path.join(os.path.dirname(page), '.render-check.html')  # same folder: same images
  with open(probe, 'w', encoding='utf-8') as f:
    f.write(text.replace('</body>', _CHECK + '</body>'))
  profile = tempfile.mkdtemp(prefix='chromium-')
  try:
    result = subprocess.run(
        [CHROMIUM, *_FLAGS, f'--user-data-dir={profile}', '--virtual-time-budget=10000',
         '--dump-dom', f'file://{probe}'], capture_output=True, text=True, timeout=120)
  finally:
    os.remove(probe)
    shutil.rmtree(profile, ignore_errors=True)
  dom = result.stdout
  match = re.search(r'data-images="(\d+)" data-loaded="(\d+)"', dom)
  if result.returncode != 0 or match is None:
    raise AssertionError(f'Chromium did not load {page}: {result.stderr[-2000:]}')
  return dom, int(match.group(1)), int(match.group(2))
