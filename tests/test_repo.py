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
    r = subprocess.run([str(EXE), 'tables', '--out', str(tmp_path), '--n-steps', '200'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'cosine (Improved DDPM) schedule, T=200' in r.stdout
    assert len(list(tmp_path.glob('*.png'))) == 6

def test_unknown_option_is_refused(tmp_path):
    r = subprocess.run([str(EXE), 'tables', '--out', str(tmp_path), '--gamma', '3'], capture_output=True, text=True)
    assert r.returncode == 2 and 'unrecognized arguments: --gamma 3' in r.stderr
    assert not list(tmp_path.glob('*.png'))

def test_train_sample_fid_commands(tmp_path):
    "The main job end to end, shrunk: train one epoch of a tiny model, sample from it, score the samples"
    run = lambda *a: subprocess.run([str(EXE), *a], capture_output=True, text=True, cwd=tmp_path)
    r = run('train', '--out', 'run', '--channels', '8,16', '--epochs', '1', '--n-samples', '32', '--sample-steps', '5')
    assert r.returncode == 0, r.stderr[-2000:]
    assert {'model.pt', 'loss.png', 'samples.png', 'samples.pt'} <= {p.name for p in (tmp_path/'run').iterdir()}
    r = run('sample', 'run/model.pt', '--out', 'more', '--sampler', 'ddpm', '--steps', '10', '--n', '8')
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path/'more.png').exists() and (tmp_path/'more.pt').exists()
    r = run('fid', '--samples', 'run/samples.pt', '--n-boot', '10')
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"FID [\d.]+ \(n=32, 95% CI [\d.]+–[\d.]+; real-data floor at n=32: [\d.]+\), KID", r.stdout), r.stdout
    r = run('train', '--out', 'run2', '--channels', '8,32', '--epochs', '1', '--resume', 'run/model.pt')
    assert r.returncode != 0 and 'from another model configuration' in r.stderr
