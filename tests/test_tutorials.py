"""Each tutorial as Colab opens it: the notebook alone in an empty folder, with only the installed package, every cell run but the slow ones."""
import os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / 'nbs' / 'tutorials').glob('*.ipynb'))
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
