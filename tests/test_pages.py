"""The pages as readers use them: the home page's visible code pasted into a fresh interpreter outside the repository."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ('#| hide', '#|hide', '#| echo: false', '#| include: false', '#| eval: false')

def visible_code(nb):
    "The code of `nb`'s cells that the rendered page shows, in order, without their `#|` directives"
    out = []
    for c in json.loads(Path(nb).read_text())['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] != 'code' or any(h in src for h in HIDDEN): continue
        out.append('\n'.join(l for l in src.splitlines() if not l.startswith('#|')))
    return out

def fresh_python(code, cwd):
    "Run `code` as a script in a fresh interpreter in `cwd`, with no path into the repository"
    (Path(cwd) / 'page.py').write_text(code)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONSTARTUP')}
    return subprocess.run([sys.executable, 'page.py'], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**env, 'MPLBACKEND': 'Agg', 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '2')})

def test_home_page_code_runs_as_copied(tmp_path):
    cells = visible_code(ROOT / 'nbs' / 'index.ipynb')
    assert len(cells) >= 3 and any('import' in c for c in cells[:1])  # the imports come first, in view
    p = fresh_python('\n\n'.join(cells) + '\nassert samples.shape == (16, 1, 32, 32)\n', tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'Warning' not in p.stderr, p.stderr[-3000:]  # nothing a reader would see as a warning
