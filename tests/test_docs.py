"The documentation preview: every page builds without Quarto, and pages render in headless Chromium."
import os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--hide-scrollbars']

@pytest.fixture(scope='module')
def preview():
    subprocess.run([sys.executable, 'tools/preview.py'], cwd=ROOT, check=True, capture_output=True)
    return ROOT/'_preview'

def test_preview_builds_every_page(preview):
    nbs = [p for p in (ROOT/'nbs').rglob('*.ipynb') if not p.name.startswith('_') and '.ipynb_checkpoints' not in str(p)]
    for nb in nbs:
        page = (preview/nb.relative_to(ROOT/'nbs')).with_suffix('.html')
        assert page.exists(), page
        text = page.read_text()
        assert 'Traceback (most recent call last)' not in text, page

def _chromium(*args, tmp):
    if not CHROMIUM:
        if os.environ.get('DIFFNOTES_REQUIRE_BROWSER'): pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip('chromium is not installed')
    return subprocess.run([CHROMIUM, *FLAGS, f'--user-data-dir={tmp}', *args], capture_output=True, text=True, timeout=180)

@pytest.mark.parametrize('page,title', [('index.html', 'diffnotes'), ('tutorials/p2.html', 'Perception Prioritized Training')])
def test_page_renders_in_chromium(preview, tmp_path, page, title):
    url = (preview/page).as_uri()
    dom = _chromium('--dump-dom', url, tmp=tmp_path/'profile').stdout
    assert title in dom, dom[:500]
    assert dom.count('<img') >= 1 and 'data:image/png;base64' in dom
    assert 'Traceback (most recent call last)' not in dom
    shot = tmp_path/'page.png'
    _chromium(f'--screenshot={shot}', '--window-size=1200,1600', url, tmp=tmp_path/'profile2')
    assert shot.exists() and shot.stat().st_size > 10_000
