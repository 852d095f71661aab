"Repository-level checks: the README, its commands and the installed `diffnotes` command."
import re, subprocess, sys
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

# The import graph of the package: layered, no circles, no private names across modules.
LAYERS = {'schedules': 0, 'weights': 1, 'diffusion': 1, 'timesteps': 1, 'models': 0, 'data': 0, 'eval': 1,
          'callbacks': 2, 'samplers': 2, 'runs': 3, 'cli': 4}
MATH = ('schedules', 'weights', 'diffusion', 'timesteps')

def _imports():
    "{module: [(imported module, [names])]} for the package's own modules"
    import ast
    out = {}
    for f in (ROOT/'diffnotes').glob('*.py'):
        if f.stem.startswith('_'): continue
        edges = []
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module.removeprefix('diffnotes.').lstrip('.') if (node.level or node.module.startswith('diffnotes')) else node.module
                edges.append((mod, [a.name for a in node.names], node.level > 0 or node.module.startswith('diffnotes')))
            elif isinstance(node, ast.Import): edges += [(a.name, [], False) for a in node.names]
        out[f.stem] = edges
    return out

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
    assert set(ours) == set(LAYERS), set(ours) ^ set(LAYERS)
    for m, deps in ours.items():
        for d in deps: assert LAYERS[d] < LAYERS[m], f"{m} imports {d}: an arrow up or sideways"
    imps = _imports()
    for m in MATH: assert not any(e.startswith('fastai') for e, _, _ in imps[m]), f"{m} imports fastai"
    assert ours['models'] == [] and ours['data'] == [] and ours['eval'] == ['data']
    assert max(floors.values()) <= 5, floors
