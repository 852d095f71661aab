"Repository-level checks: the README, its commands and its code, and the installed `diffnotes` command."
import os, re, subprocess, sys, tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent/'diffnotes'

def _readme_commands():
    m = re.search(r"^```sh\n(.*?)\n```", (ROOT/'README.md').read_text(), re.S | re.M)
    return m.group(1).splitlines()

def test_readme_opens_with_two_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert 'diffnotes ' in cmds[0] and 'nbdev-test' in cmds[1]
    assert (ROOT/'README.md').read_text().index('```sh') < 800  # below the title, the samples and one sentence

def test_readme_says_where_to_get_diffnotes():
    "The clone step and a notebook's install line, both from pyproject.toml's repository; CI's two commands stay two"
    repo = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['urls']['Repository']
    text = (ROOT/'README.md').read_text()
    assert f"git clone {repo} && cd {repo.rsplit('/', 1)[1]}" in text
    assert f'pip install -q "diffnotes @ git+{repo}"' in text
    assert not any('git clone' in c for c in _readme_commands())

def test_readme_code_pastes_into_the_python_prompt(tmp_path):
    """The README's Python blocks, in order, typed into the plain `python` prompt in an empty folder, as a reader pastes
    them: the prompt takes a compound statement only when a blank line ends it, and goes on after an error, so the
    exit code alone says little. It trains one epoch."""
    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT/'README.md').read_text(), re.S | re.M)
    assert len(blocks) >= 2 and 'import' in blocks[0]
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONSTARTUP')}
    env.update(MPLBACKEND='Agg', OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'))
    p = subprocess.run([sys.executable, '-i'], input='\n'.join(blocks), cwd=tmp_path, capture_output=True, text=True,
                       timeout=900, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'Traceback' not in p.stderr and 'SyntaxError' not in p.stderr, p.stderr[-3000:]
    assert 'Warning' not in p.stderr, p.stderr[-3000:]  # nothing a reader would see as a warning
    assert 'torch.Size([16, 1, 32, 32])' in p.stdout, p.stdout[-3000:]  # the output the README shows

def test_readme_matches_index_notebook():
    r = subprocess.run([sys.executable, 'tools/readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_tables_command(tmp_path):
    r = subprocess.run([str(EXE), 'tables', '--out', str(tmp_path), '--n-train-steps', '200'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'cosine (Improved DDPM) schedule, T=200' in r.stdout
    assert len(list(tmp_path.glob('*.png'))) == 6

def test_unknown_option_is_refused(tmp_path):
    r = subprocess.run([str(EXE), 'tables', '--out', str(tmp_path), '--gamma', '3'], capture_output=True, text=True)
    assert r.returncode == 2 and 'unrecognized arguments: --gamma 3' in r.stderr
    assert not list(tmp_path.glob('*.png'))

# The import graph of the package: layered, no circles, no private names across modules. The layers and the reading
# of the imports live in tools/modgraph.py, which also draws the graph on the home page and in the README.
sys.path.insert(0, str(ROOT/'tools'))
from modgraph import LAYERS, MATH, imports as _imports, mermaid, check as check_diagram

def import_floors():
    "The longest chain of imports below each module (its floor) and the private names imported across modules"
    imps = _imports()
    ours = {m: sorted({e for e, _, own in edges if own and e in imps}) for m, edges in imps.items()}
    private = [(m, e, n) for m, edges in imps.items() for e, names, own in edges if own for n in names if n.startswith('_')]
    floors = {}
    def floor(m, seen=()):
        assert m not in seen, f"import circle: {' -> '.join(seen + (m,))}"
        if m not in floors: floors[m] = 1 + max((floor(d, seen + (m,)) for d in ours[m]), default=0)
        return floors[m]
    for m in ours: floor(m)
    return floors, ours, private

def test_import_graph_is_layered():
    floors, ours, private = import_floors()
    assert private == [], private
    assert set(ours) == set(LAYERS), set(ours) ^ set(LAYERS)  # every module has its layer, and every layer its module
    for m, deps in ours.items():
        for d in deps: assert LAYERS[d] < LAYERS[m], f"{m} imports {d}: an arrow up or sideways"
    imps = _imports()
    for m in MATH + ('consistency',):  # consistency models are math too, though they sit on the denoiser
        assert not any(e.startswith('fastai') for e, _, _ in imps[m]), f"{m} imports fastai"
    assert ours['consistency'] == ['checks', 'denoiser', 'diffusion', 'grids', 'schedules'], ours['consistency']
    assert ours['models'] == [] and ours['data'] == [] and ours['eval'] == ['data']
    assert ours['checks'] == [] and ours['config'] == ['checks']
    top_imps = _imports(top_level=True)  # `as_float` in checks imports torch when called, not when loaded
    light = {e.split('.')[0] for m in ('checks', 'config') for e, _, own in top_imps[m] if not own}
    assert light <= {'math', 'os', 'json', 'dataclasses', 'fastcore'}, light  # the light modules: no torch, fastai or NumPy
    top = {e.split('.')[0] for e, _, own in top_imps['cli'] if not own}
    assert not top & {'torch', 'fastai', 'diffusers', 'numpy', 'matplotlib'}, top  # the command imports them in its commands
    assert ours['cm_training'] == ['callbacks', 'checks', 'consistency', 'denoiser', 'diffusion', 'grids', 'schedules',
                                   'timesteps'], ours['cm_training']
    # the run layer's modules stack (files < learner < … < export < cli), and since consistency tuning the learner
    # stands on the consistency math (learner < cm_training < consistency < denoiser < grids): three floors more
    assert max(floors.values()) <= 12, floors

def test_module_graph_is_drawn_from_the_imports():
    "The Mermaid diagram of the home page (fenced for Quarto) and the README's (for GitHub) are the imports' own"
    assert mermaid().startswith('flowchart TB\n') and ' --> ' in mermaid()
    for f in ('nbs/index.ipynb', 'README.md'): assert check_diagram(ROOT/f) == '', check_diagram(ROOT/f)
    assert '```{mermaid}' in (ROOT/'nbs/index.ipynb').read_text() and '```mermaid' in (ROOT/'README.md').read_text()
    r = subprocess.run([sys.executable, 'tools/modgraph.py', '--check', 'README.md'], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_library_lines():
    "One statement per line and lines of at most 120 characters in the exported modules (nbdev's docstring and `__all__` aside)"
    import io, tokenize
    bad = []
    for f in sorted((ROOT/'diffnotes').glob('[a-z]*.py')):
        src = f.read_text()
        lines, skip = src.splitlines(), set()
        start = next((i for i, l in enumerate(lines) if l.startswith('__all__')), None)
        if start is not None:
            end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(']'))
            skip = set(range(start, end + 1))
        bad += [f"{f.name}:{i + 1} has {len(l)} characters" for i, l in enumerate(lines) if i and i not in skip and len(l) > 120]
        toks = tokenize.generate_tokens(io.StringIO(src).readline)
        bad += [f"{f.name}:{t.start[0]} chains statements with ';'" for t in toks if t.type == tokenize.OP and t.string == ';']
    assert not bad, '\n'.join(bad)
