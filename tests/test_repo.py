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
    assert (ROOT/'README.md').read_text().index('```sh') < 400  # right below the title and subtitle

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
