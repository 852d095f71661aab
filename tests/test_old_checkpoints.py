"""Runs written by an older diffnotes still sample, load, resume and export. The fixtures in `tests/fixtures/` were made
by commit e222743 (see its README.md and make_fixtures.py): `finished/`, a run of 2 epochs, and `midway/`, the same run
(same configuration and seed) stopped after the checkpoint of epoch 1, both trained on the 128 PNGs of `data/`, which
their configs name by the relative path 'data'. Each test copies them into `tmp_path` and runs there; the fixtures
themselves are never written. The stored files are read here with plain `torch.load`, as that commit wrote them.
The resume runs the `diffnotes` command in a process of its own, as a user runs it; the other commands call its entry
point, `diffnotes.cli.main`, in this process, which spares an import of torch and fastai each."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch

FIXTURES = Path(__file__).parent / 'fixtures'
EXE = Path(sys.executable).parent / 'diffnotes'
RUNS = ('finished', 'midway')

def copy(tmp_path, *runs):
    "The fixture runs `runs` and their images, copied into `tmp_path`"
    for name in ('data', *runs): shutil.copytree(FIXTURES / name, tmp_path / name)
    return tmp_path

def run(*args, cwd):
    "The `diffnotes` command in a process of its own"
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, cwd=cwd, timeout=300, env=env)

def cli(*args, cwd, capsys):
    "The `diffnotes` command's entry point called in this process from `cwd`: its exit status and its output"
    from diffnotes.cli import main
    here = os.getcwd()
    os.chdir(cwd)
    try:
        main(list(args))
        code = 0
    except SystemExit as e: code = 0 if e.code is None else e.code
    finally: os.chdir(here)
    out = capsys.readouterr()
    return code, out.out + out.err

def stored(name):
    "The checkpoint of fixture `name` as e222743 wrote it"
    return torch.load(FIXTURES / name / 'model.pt', map_location='cpu', weights_only=True)

def equal_lists(a, b): return len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b))

def test_fixtures_hold_every_piece_of_state():
    "The fixtures are what they claim: the old layout, with every piece of training state a resume restores"
    fin, mid = stored('finished'), stored('midway')
    for ck, done in ((fin, 2), (mid, 1)):
        assert (ck['format'], ck['version'], ck['epochs_done']) == ('diffnotes-run', 1, done)
        for k in ('model', 'opt', 'rng', 'sampler', 'ema', 'scaler', 'phema', 'history'): assert ck[k], k
        assert ck['config']['precision'] == 'fp16' and ck['scaler']['scale'] > 0  # a loss scaler to restore
    assert mid['accum']['count'] == 32 and fin.get('accum') is None  # gradients pending mid-way; none at the end
    assert sorted(p.name for p in (FIXTURES / 'finished' / 'phema').iterdir()) == ['0001.pt', '0002.pt']
    assert sorted(p.name for p in (FIXTURES / 'midway' / 'phema').iterdir()) == ['0001.pt']
    assert not (FIXTURES / 'midway' / 'samples.pt').exists()
    assert json.loads((FIXTURES / 'midway' / 'config.json').read_text())['data'] == 'data'
    assert len(list((FIXTURES / 'data').rglob('*.png'))) == 128

@pytest.mark.parametrize('name', RUNS)
def test_sample_old_run(tmp_path, capsys, name):
    "`diffnotes sample` draws finite images from an old run, from its moving average and from a post-hoc average"
    copy(tmp_path, name)
    draws = {}
    for out, extra in (('plain', []), ('phema', ['--ema-length', '0.1'])):
        args = ('sample', name, '--n', '4', '--steps', '3', '--out', f'draws/{out}', *extra)
        code, log = cli(*args, cwd=tmp_path, capsys=capsys)
        assert code == 0, log[-3000:]
        x = draws[out] = torch.load(tmp_path / 'draws' / f'{out}.pt')
        assert x.shape == (4, 1, 32, 32) and torch.isfinite(x).all() and x.abs().max() <= 1
    assert not torch.equal(draws['plain'], draws['phema'])  # the two averages differ

@pytest.mark.parametrize('name', RUNS)
def test_load_run_gives_stored_weights(name):
    "`load_run` of an old run gives its stored raw weights, its stored moving average, and a post-hoc average"
    from diffnotes.sampling import load_run
    ck, path = stored(name), FIXTURES / name
    raw, cfg = load_run(path, raw=True, device='cpu')
    assert raw.state_dict().keys() == ck['model'].keys()
    assert all(torch.equal(raw.state_dict()[k], v) for k, v in ck['model'].items())
    assert (cfg.channels, cfg.n_train_steps, cfg.phema, cfg.epochs) == ((8,), 100, True, 2)
    ema, _ = load_run(path, device='cpu')
    assert equal_lists(list(ema.parameters()), ck['ema']['shadow_params'])
    ph, _ = load_run(path, ema_length=0.1, device='cpu')
    ps = list(ph.parameters())
    assert all(torch.isfinite(p).all() for p in ps) and not equal_lists(ps, ck['ema']['shadow_params'])

def test_resume_midway_ends_on_finished(tmp_path, capsys):
    "`diffnotes train --resume` finishes the old mid-way run, bit for bit the old run trained straight through"
    from diffnotes.checkpoints import load_checkpoint
    from diffnotes.sampling import load_run
    copy(tmp_path, *RUNS)
    r = run('train', '--resume', 'midway', cwd=tmp_path)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert 'resuming midway at epoch 2 of 2' in r.stdout, r.stdout[-2000:]
    assert load_checkpoint(tmp_path / 'midway')['epochs_done'] == 2
    assert len((tmp_path / 'midway' / 'history.csv').read_text().splitlines()) == 3  # a header and 2 epochs
    assert (tmp_path / 'midway' / 'phema' / '0002.pt').exists()
    fin, mid = tmp_path / 'finished', tmp_path / 'midway'
    for kw in (dict(raw=True), {}, dict(ema_length=0.1)):  # the weights, the moving average, a post-hoc average
        a, b = load_run(fin, device='cpu', **kw)[0], load_run(mid, device='cpu', **kw)[0]
        diff = max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))
        assert diff == 0, (kw, diff)
    assert torch.equal(torch.load(fin / 'samples.pt'), torch.load(mid / 'samples.pt'))  # drawn by the new code
    # the old finished run: nothing left to train, its samples kept
    before = (fin / 'samples.pt').read_bytes()
    code, log = cli('train', '--resume', 'finished', cwd=tmp_path, capsys=capsys)
    assert code == 0 and 'nothing left to train' in log, log[-3000:]
    assert (fin / 'samples.pt').read_bytes() == before

def test_export_old_run(tmp_path, capsys):
    "`diffnotes export` writes an old run as a diffusers pipeline holding its moving average, which runs"
    from diffusers import DDPMPipeline
    copy(tmp_path, 'finished')
    code, log = cli('export', 'finished', 'pipe', cwd=tmp_path, capsys=capsys)
    assert code == 0, log[-3000:]
    pipe = DDPMPipeline.from_pretrained(tmp_path / 'pipe', trust_remote_code=True)
    assert equal_lists(list(pipe.unet.net.parameters()), stored('finished')['ema']['shadow_params'])
    x = pipe(batch_size=2, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type='np').images
    assert x.shape == (2, 32, 32, 1) and (x >= 0).all() and (x <= 1).all()
