"The documentation preview: every page builds without Quarto, and pages render in headless Chromium."
import os, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each worker that runs these tests builds its own preview, in a folder of its own. `xdist_group` would keep them on one
# worker, but pytest 9.2 with pytest-xdist 3.8 does not honour it (tests of one group ran on both workers), and two
# builds into one `_preview` broke each other. The step they share, nbdev's `_proc` cache, is locked by the tools.
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--hide-scrollbars']

@pytest.fixture(scope='module')
def preview(tmp_path_factory):
    out = tmp_path_factory.mktemp('preview')
    r = subprocess.run([sys.executable, 'tools/preview.py', '--out', str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout[-1000:], r.stderr[r.stderr.rfind('Traceback'):][-3000:])
    return out

def test_preview_builds_every_page(preview):
    nbs = [p for p in (ROOT/'nbs').rglob('*.ipynb') if not p.name.startswith('_') and '.ipynb_checkpoints' not in str(p)]
    for nb in nbs:
        rel = nb.relative_to(ROOT/'nbs')
        page = (preview/rel).with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name)).with_suffix('.html')  # the site drops the number
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

def _norm(s): return re.sub(r'[^0-9a-z]', '', s.lower())  # Quarto and nbconvert spell heading ids differently

def test_links_resolve_and_no_private_anchors(preview):
    "Every relative link of the preview reaches a page that exists, and an anchor on it; none targets a private name"
    ids, bad = {}, []
    def anchors(p):
        if p not in ids: ids[p] = {_norm(a) for a in re.findall(r'id="([^"]+)"', p.read_text())}
        return ids[p]
    pages = list(preview.rglob('*.html'))
    for page in pages:
        for href in re.findall(r'href="([^"]+)"', page.read_text()):
            if href.startswith(('http:', 'https:', 'mailto:', 'data:', 'javascript:')): continue
            path, _, frag = href.partition('#')
            target = page if not path else (page.parent / path).resolve()
            if not target.exists(): bad.append(f"{page.relative_to(preview)}: dead link {href}")
            elif frag.startswith('_'): bad.append(f"{page.relative_to(preview)}: private anchor {href}")
            elif frag and target.suffix == '.html' and _norm(frag) not in anchors(target): bad.append(f"{page.relative_to(preview)}: no anchor {href}")
    assert len(pages) > 15 and not bad, bad
