"""Each tutorial as Colab opens it: its install cell, run in a fresh environment, installs diffnotes from the repository;
then the notebook alone in an empty folder, with only the installed package, runs every cell but the slow ones."""
import importlib.util, json, os, re, shutil, site, subprocess, sys, tomllib, venv
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / 'nbs' / 'tutorials').glob('*.ipynb'))
PYPROJECT = tomllib.loads((ROOT / 'pyproject.toml').read_text())
REPO = PYPROJECT['project']['urls']['Repository']
RUN = ("import sys; from nbdev.test import test_nb; "
       "ok, secs = test_nb(sys.argv[1], skip_flags=['slow', 'cuda'], profile=False); "
       "print(f'{sys.argv[1]}: {secs:.0f}s'); sys.exit(0 if ok else 1)")

@pytest.mark.parametrize('nb', TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_alone_in_an_empty_folder(nb, tmp_path):
    shutil.copy(nb, tmp_path / nb.name)  # nothing else: no figures, no runs, no repository beside it
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONSTARTUP')}
    p = subprocess.run([sys.executable, '-c', RUN, nb.name], cwd=tmp_path, capture_output=True, text=True, timeout=1200,
                       env={**env, 'MPLBACKEND': 'Agg'})
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    assert sorted(f.name for f in tmp_path.iterdir()) == [nb.name]  # and it wrote nothing beside itself

def test_stored_results_ship_in_the_package():
    "Every stored result is package data, so that an installed diffnotes (Colab's) has it"
    import fnmatch, tomllib
    pats = tomllib.loads((ROOT / 'pyproject.toml').read_text())['tool']['setuptools']['package-data']['diffnotes']
    files = sorted((ROOT / 'diffnotes' / 'results').iterdir())
    assert files and all(any(fnmatch.fnmatch(f'results/{f.name}', p) for p in pats) for f in files), [f.name for f in files]

def code_cells(nb):
    return [''.join(c['source']) for c in json.loads(Path(nb).read_text())['cells'] if c['cell_type'] == 'code']

def install_cell(nb):
    "The first code cell of `nb`: the one that installs diffnotes where it is not installed"
    return code_cells(nb)[0]

def test_one_install_cell_in_every_tutorial():
    assert len({install_cell(nb) for nb in TUTORIALS}) == 1, 'the tutorials install diffnotes in different ways'
    assert "find_spec('diffnotes') is None" in install_cell(TUTORIALS[0])  # a clone's `pip install -e .` is left alone

@pytest.mark.parametrize('nb', TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_install_cell_installs_from_the_repository(nb, monkeypatch):
    "The cell asks pip for pyproject.toml's repository by a `git+` URL, never for a bare `diffnotes` (not ours on PyPI)"
    calls, find_spec = [], importlib.util.find_spec
    monkeypatch.setattr(subprocess, 'run', lambda args, **kw: calls.append(args))
    exec(install_cell(nb), {})
    assert calls == []  # diffnotes is installed here: nothing to do
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'diffnotes' else find_spec(name, *a))
    exec(install_cell(nb), {})
    (args,) = calls
    assert args[:4] == [sys.executable, '-m', 'pip', 'install'], args
    assert [a for a in args[4:] if not a.startswith('-')] == [f'diffnotes @ git+{REPO}'], args
    bare = re.compile(r"pip\W+install\b.*\bdiffnotes\b(?!\s*@)")  # nor a shell line (`!pip install diffnotes`) elsewhere
    assert not [l for c in code_cells(nb) for l in c.splitlines() if bare.search(l)]

def _copy_of_the_working_tree(dest, env):
    "A git repository at `dest` holding the working tree as it is: tracked files and untracked ones git does not ignore"
    ls = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT, env=env,
                        capture_output=True, text=True, check=True)
    for f in filter(None, ls.stdout.split('\0')):
        if not (ROOT / f).is_file(): continue  # tracked but deleted in the working tree
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    commit = ['-c', 'user.name=test', '-c', 'user.email=test@example.com', 'commit', '-qm', 'the working tree']
    for cmd in (['init', '-q'], ['add', '-A'], commit):
        subprocess.run(['git', *cmd], cwd=dest, env=env, capture_output=True, check=True)

def _host_site_packages():
    "The site-packages folders of this interpreter, where torch, fastai and setuptools are installed"
    dirs = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    return [d for d in dirs if Path(d).is_dir()]

def _fresh_venv(path):
    """A venv without system site packages, given this interpreter's site-packages as plain paths: torch, fastai and
    setuptools import, while the editable install of diffnotes does not, since its own .pth file there is not processed"""
    venv.EnvBuilder(with_pip=False).create(path)
    py = path / 'bin' / 'python'
    lib = subprocess.run([py, '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    (Path(lib) / 'host.pth').write_text('\n'.join(_host_site_packages()) + '\n')
    return py, Path(lib)

def test_install_cell_in_a_fresh_environment(tmp_path):
    """Colab's path, offline: the install cell, exactly as in the tutorials, in a fresh virtual environment, with a copy of
    this working tree standing in for the repository's URL. It installs diffnotes with its package data, which the
    notebook's next cell then imports in the same process; run again, it does nothing."""
    if not shutil.which('git'): pytest.skip("git is not installed: pip needs it for a `git+` URL")
    from importlib.metadata import version
    from packaging.requirements import Requirement
    for req in map(Requirement, PYPROJECT['build-system']['requires']):  # the offline build uses this interpreter's
        assert version(req.name) in req.specifier, f"the build needs {req} here: pip install -e '.[dev]'"
    repo, empty = tmp_path / 'repo', tmp_path / 'empty'
    repo.mkdir()
    empty.mkdir()
    gitconfig = tmp_path / 'gitconfig'  # git fetches the URL from the copy: nothing leaves the machine
    gitconfig.write_text(f'[url "{repo.as_uri()}"]\n\tinsteadOf = {REPO}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PIP_', 'PYTHON', 'GIT_', 'VIRTUAL_ENV'))}
    env.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM='1')
    _copy_of_the_working_tree(repo, env)
    py, lib = _fresh_venv(tmp_path / 'venv')
    assert subprocess.run([py, '-c', 'import diffnotes'], cwd=empty, env=env, capture_output=True).returncode == 1
    # pip reads its `PIP_NO_…` variables backwards (pypa/pip#5735): 0 turns build isolation off, so nothing is fetched
    env.update(PIP_NO_INDEX='1', PIP_NO_BUILD_ISOLATION='0', PIP_CONFIG_FILE=os.devnull,
               PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_CACHE_DIR=str(tmp_path / 'pip-cache'))
    cell = install_cell(TUTORIALS[0])
    (empty / 'cell.py').write_text(cell + '\nimport diffnotes\nprint(diffnotes.__file__)\n')
    p = subprocess.run([py, 'cell.py'], cwd=empty, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    pkg = Path(p.stdout.strip().splitlines()[-1]).parent
    assert pkg == lib / 'diffnotes', pkg  # in the venv, not this checkout
    installed = {f.relative_to(pkg).as_posix() for f in pkg.rglob('*') if f.is_file()}
    for pat in PYPROJECT['tool']['setuptools']['package-data']['diffnotes']:
        shipped = {f.relative_to(repo / 'diffnotes').as_posix() for f in (repo / 'diffnotes').glob(pat)}
        assert shipped <= installed, (pat, sorted(shipped - installed))
    assert {'data', 'results'} <= {f.split('/')[0] for f in installed}
    assert any(f.endswith('.npz') for f in installed) and any(f.endswith('.json') for f in installed)
    guard = "import subprocess\ndef run(*a, **k): raise SystemExit(f'the install cell ran {a} again')\nsubprocess.run = run\n"
    (empty / 'again.py').write_text(guard + cell)  # run again, with pip out of reach: the cell finds diffnotes
    p = subprocess.run([py, 'again.py'], cwd=empty, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout and not p.stderr, p.stdout + p.stderr
