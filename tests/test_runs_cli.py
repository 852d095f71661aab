"""The `diffnotes` command as a user runs it: separate processes, a run killed with SIGKILL and resumed,
a hostile checkpoint, and the log a run writes when its output is not a terminal."""
import io, os, re, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch

EXE = Path(sys.executable).parent / 'diffnotes'
TINY = ['--channels', '8,16', '--bs', '64', '--n-samples', '8', '--sample-steps', '5', '--seed', '3']

def run(*args, cwd):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, cwd=cwd, timeout=600)

def weights(path):
    from diffnotes.checkpoints import load_checkpoint
    return load_checkpoint(path)['model']

def kill_after_first_checkpoint(cwd, *options):
    "`diffnotes train --out killed --epochs 2 OPTIONS` in `cwd`, killed with SIGKILL once its first checkpoint is written"
    p = subprocess.Popen([str(EXE), 'train', '--out', 'killed', '--epochs', '2', *options], cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck, start = Path(cwd) / 'killed' / 'model.pt', time.time()
    while not ck.exists() and time.time() - start < 300 and p.poll() is None: time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    return ck

def max_dw(a, b): return max((a[k] - b[k]).abs().max().item() for k in a)

def resumes_exactly(cwd, *options):
    "Train `full` for 2 epochs with OPTIONS, kill `killed` after its first checkpoint, resume it: both must be equal"
    r = run('train', '--out', 'full', '--epochs', '2', *options, cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    ck = kill_after_first_checkpoint(cwd, *options)
    r = run('train', '--resume', 'killed', cwd=cwd)
    assert r.returncode == 0, r.stderr[-3000:]
    assert max_dw(weights(cwd / 'full'), weights(cwd / 'killed')) == 0
    assert torch.equal(torch.load(cwd / 'full' / 'samples.pt'), torch.load(cwd / 'killed' / 'samples.pt'))
    return ck

def test_killed_run_resumes_bit_for_bit(tmp_path):
    "Kill `diffnotes train` with SIGKILL after its first checkpoint, resume it, and compare with a run never interrupted"
    r = run('train', '--out', 'full', '--epochs', '2', *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r'^epoch 1/2  train_loss [\d.]+  valid_loss [\d.]+  t-quarters( [\d.]+){4}  \d+s$', r.stdout, re.M), r.stdout  # one line per epoch in a log
    assert '\r' not in r.stdout and '█' not in r.stdout                                                   # no progress-bar redraws
    ck = kill_after_first_checkpoint(tmp_path, *TINY)
    from diffnotes.checkpoints import load_checkpoint
    done = load_checkpoint(ck)['epochs_done']
    assert done == 1, done
    r = run('train', '--resume', 'killed', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert load_checkpoint(ck)['epochs_done'] == 2
    assert max_dw(weights(tmp_path / 'full'), weights(tmp_path / 'killed')) == 0
    assert torch.equal(torch.load(tmp_path / 'full' / 'samples.pt'), torch.load(tmp_path / 'killed' / 'samples.pt'))
    r = run('train', '--resume', 'killed', '--n-train-steps', '500', cwd=tmp_path)
    assert r.returncode == 2 and '`--n-train-steps` 1000 in the run, 500 given' in r.stderr, r.stderr[-2000:]
    r = run('train', '--out', 'full', '--epochs', '2', *TINY, cwd=tmp_path)
    assert r.returncode == 2 and 'already holds' in r.stderr

class Payload:
    "Unpickling this creates the file `marker`"
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (io.open, (self.marker, 'w'))

def test_hostile_checkpoint_runs_nothing(tmp_path):
    "A checkpoint whose pickle would write a file is refused by `sample` and `train --resume`, and the file never appears"
    marker = tmp_path / 'pwned'
    torch.save({'format': 'diffnotes-run', 'config': {}, 'model': {}, 'x': Payload(str(marker))}, tmp_path / 'evil.pt')
    for args in (['sample', 'evil.pt', '--out', 'out'], ['train', '--resume', 'evil.pt']):
        r = run(*args, cwd=tmp_path)
        assert r.returncode == 2, r.stderr[-2000:]
        assert 'refuses it without running any of its code' in r.stderr, r.stderr[-2000:]
        assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['evil.pt']

def test_sample_and_fid_commands(tmp_path):
    "The main job end to end, shrunk: train one epoch, sample from it with DDPM, score the samples"
    r = run('train', '--out', 'run', '--epochs', '1', *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {'model.pt', 'config.json', 'history.csv', 'loss.png', 'samples.png', 'samples.pt'} == {p.name for p in (tmp_path / 'run').iterdir()}
    r = run('sample', 'run', '--out', 'more', '--sampler', 'ddpm', '--steps', '10', '--n', '8', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / 'more.png').exists() and torch.load(tmp_path / 'more.pt').shape == (8, 1, 32, 32)
    r = run('fid', 'run', '--n-boot', '10', cwd=tmp_path)  # a run folder: its samples
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"FID [\d.]+ \(n=8, 95% CI [\d.]+–[\d.]+; real-data floor at n=8: [\d.]+\), FID∞ n/a \(needs n ≥ 512\), KID", r.stdout), r.stdout

def test_edm_run_from_the_command_line(tmp_path):
    "`diffnotes train --callback edm` measures σ_data, records it, and `diffnotes sample` draws with Heun by default"
    r = run('train', '--out', 'edm', '--callback', 'edm', '--epochs', '1', *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    from diffnotes.checkpoints import load_checkpoint
    cfg = load_checkpoint(tmp_path / 'edm')['config']
    assert (cfg['objective'], cfg['weight'], cfg['sampler']) == ('edm', 'none', 'heun') and 0.5 < cfg['sigma_data'] < 1.2, cfg
    r = run('sample', 'edm', '--out', 's', '--n', '4', '--steps', '3', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    x = torch.load(tmp_path / 's.pt')
    assert x.shape == (4, 1, 32, 32) and torch.isfinite(x).all()
    r = run('train', '--out', 'bad', '--callback', 'edm', '--weight', 'p2', cwd=tmp_path)
    assert r.returncode == 2 and "`--weight` must be 'none' for `--callback` 'edm'" in r.stderr, r.stderr[-2000:]

def test_flow_run_killed_resumed_and_sampled(tmp_path):
    ("`diffnotes train --callback flow` with its options: killed, resumed bit for bit, sampled on its own grid, "
     "exported and drawn from by diffusers alone, as `sample` draws")
    FLOW = ['--callback', 'flow', '--t-dist', 'logit_normal', '--t-std', '0.8', '--shift', '2', '--ot', *TINY]
    resumes_exactly(tmp_path, *FLOW)
    from diffnotes.checkpoints import load_checkpoint
    cfg = load_checkpoint(tmp_path / 'full')['config']
    assert (cfg['objective'], cfg['weight'], cfg['sampler'], cfg['t_dist'], cfg['shift'], cfg['ot']) == \
        ('flow', 'none', 'ddim', 'logit_normal', 2., True), cfg
    r = run('sample', 'full', '--out', 's', '--n', '4', cwd=tmp_path)
    assert r.returncode == 0 and 'ddim, 5 steps' in r.stdout, (r.stdout[-1000:], r.stderr[-2000:])
    r = run('export', 'full', 'pipe', cwd=tmp_path)
    assert r.returncode == 0 and 'trust_remote_code=True' in r.stdout, (r.stdout + r.stderr)[-2000:]
    from diffnotes.denoiser import image_seed  # the seeds of `sample`'s images, for diffusers' generators
    seeds = [image_seed(0, i) for i in range(4)]
    r = subprocess.run([sys.executable, '-c', HIDDEN_FLOW.format(path='pipe', seeds=seeds, steps=5, out='d.pt')],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == 'DDPMPipeline FlowMatchEulerDiscreteScheduler 2.0 False', r.stdout
    diff = (torch.load(tmp_path / 'd.pt') - torch.load(tmp_path / 's.pt')).abs().max().item()
    assert diff < 1e-4, diff  # diffusers alone draws the images `diffnotes sample` drew

def test_consistency_run_tuned_killed_resumed_and_sampled(tmp_path):
    ("`diffnotes train --init RUN --callback consistency` tunes an EDM run as ECT does: killed, resumed bit for bit "
     "(the stage too), sampled by the consistency sampler, the score samplers refused, exported and drawn by diffusers")
    r = run('train', '--out', 'edm', '--callback', 'edm', '--epochs', '1', *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    CM = ['--init', 'edm', '--callback', 'consistency', '--cm-stage-every', '40', *TINY]
    ck = resumes_exactly(tmp_path, *CM)
    from diffnotes.checkpoints import load_checkpoint
    full = load_checkpoint(tmp_path / 'full')
    cfg = full['config']
    assert (cfg['callback'], cfg['cm_teacher'], cfg['objective'], cfg['weight'], cfg['sampler']) == \
        ('consistency', 'edm', 'edm', 'none', 'consistency'), cfg
    assert full['consistency'] == load_checkpoint(ck)['consistency'] and full['consistency']['iters'] > 40
    r = run('sample', 'full', '--out', 's', '--n', '4', '--steps', '1', cwd=tmp_path)
    assert r.returncode == 0 and 'consistency, 1 steps' in r.stdout, (r.stdout[-1000:], r.stderr[-2000:])
    assert torch.load(tmp_path / 's.pt').isfinite().all()
    r = run('sample', 'full', '--out', 'h', '--n', '4', '--sampler', 'heun', cwd=tmp_path)
    assert r.returncode == 2 and "`--sampler` 'heun' needs a score" in r.stderr, r.stderr[-2000:]
    r = run('export', 'full', 'pipe', cwd=tmp_path)
    assert r.returncode == 0 and "ConsistencyModelPipeline.from_pretrained(folder, trust_remote_code=True)" in r.stdout, \
        (r.stdout + r.stderr)[-2000:]
    from diffnotes.denoiser import image_seed  # the seeds of `sample`'s images, for diffusers' generators
    seeds = [image_seed(0, i) for i in range(4)]
    script = HIDDEN_FLOW.format(path='pipe', seeds=seeds, steps=1, out='d.pt').replace('pipe.scheduler.config.shift, ', '')
    r = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == 'ConsistencyModelPipeline CMStochasticIterativeScheduler False', r.stdout
    diff = (torch.load(tmp_path / 'd.pt') - torch.load(tmp_path / 's.pt')).abs().max().item()
    assert diff < 1e-4, diff  # diffusers alone draws the images `diffnotes sample` drew, in one call

HIDDEN_FLOW = '''
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'diffnotes': raise ImportError('diffnotes is not installed here')
sys.meta_path.insert(0, Hide())
import torch
from diffusers import DiffusionPipeline
pipe = DiffusionPipeline.from_pretrained({path!r}, trust_remote_code=True)
gens = [torch.Generator().manual_seed(s) for s in {seeds!r}]
x = pipe(batch_size=len(gens), num_inference_steps={steps}, generator=gens, output_type='pt').images
torch.save(x * 2 - 1, {out!r})
imported = any(m.split('.')[0] == 'diffnotes' for m in sys.modules)
print(type(pipe).__name__, type(pipe.scheduler).__name__, pipe.scheduler.config.shift, imported)
'''

def test_numeric_names_stay_text(tmp_path):
    "Option types come from the annotations: a folder `2024`, an output `2025` and `--channels 16` are what they say"
    from PIL import Image
    from diffnotes.data import load_embedded
    x = load_embedded()['x_train']
    for split, n in (('train', 96), ('valid', 32)):
        (tmp_path / '2024' / split / 'x').mkdir(parents=True)
        for i in range(n): Image.fromarray(x[i]).save(tmp_path / '2024' / split / 'x' / f'{i}.png')
    r = run('train', '--data', '2024', '--out', '2025', '--channels', '16', '--epochs', '1', '--bs', '32',
            '--n-samples', '4', '--sample-steps', '2', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    from diffnotes.checkpoints import load_checkpoint
    cfg = load_checkpoint(tmp_path / '2025')['config']
    assert (cfg['data'], cfg['channels']) == ('2024', [16]), cfg
    r = run('train', '--resume', '12345', cwd=tmp_path)
    assert r.returncode == 2 and '`--resume`: no checkpoint at 12345' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]

def test_conditional_run_killed_resumed_sampled_and_exported(tmp_path):
    "`train --cond` killed after its first checkpoint resumes bit for bit; `sample` draws the asked classes, guided; `export` says how"
    cond = ['--cond', '--p-uncond', '0.2', *TINY]
    r = run('train', '--out', 'full', '--epochs', '2', *cond, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ck = kill_after_first_checkpoint(tmp_path, *cond)
    from diffnotes.checkpoints import load_checkpoint
    assert load_checkpoint(ck)['epochs_done'] == 1
    r = run('train', '--resume', 'killed', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = load_checkpoint(ck)['config']
    assert (cfg['cond'], cfg['p_uncond'], cfg['n_classes']) == (True, 0.2, 10), cfg
    assert max_dw(weights(tmp_path / 'full'), weights(tmp_path / 'killed')) == 0
    assert torch.equal(torch.load(tmp_path / 'full' / 'samples.pt'), torch.load(tmp_path / 'killed' / 'samples.pt'))
    r = run('sample', 'full', '--out', 'grid', '--label', 'all', '--n', '20', '--guidance', '3', '--interval', '0.3,3',
            '--steps', '4', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(tmp_path / 'grid.pt').shape == (20, 1, 32, 32)
    assert re.search(r'guidance 3: the evaluation classifier puts [\d.]+% of the 20 samples in their class', r.stdout), r.stdout
    r = run('sample', 'full', '--out', 'nine', '--label', '10', '--n', '2', cwd=tmp_path)
    assert r.returncode == 2 and '`--label` must be an integer in [0, 9]' in r.stderr, r.stderr[-2000:]
    r = run('sample', 'full', '--label', 'Dress', '--n', '4', '--steps', '4', cwd=tmp_path)  # a class by its name
    assert r.returncode == 0 and (tmp_path / 'full' / 'samples-ddpm-4-0-labelDress.pt').exists(), (r.stdout + r.stderr)[-2000:]
    r = run('sample', 'full', '--out', 'both', '--n', '4', '--steps', '4', '--guide', 'full', '--guide-raw', '--guidance',
            '2', '--guide-mix', '0.5', cwd=tmp_path)  # classifier-free guidance and autoguidance, half each
    assert r.returncode == 0 and "(autoguidance's share 0.5, classifier-free guidance's the rest)" in r.stdout, \
        (r.stdout + r.stderr)[-2000:]
    r = run('sample', 'full', '--help', cwd=tmp_path)
    assert r.returncode == 0 and 'the classes of full for `--label`: 0 T-shirt/top, 1 Trouser' in ' '.join(r.stdout.split()), r.stdout[-1500:]
    r = run('export', 'full', 'pipe', cwd=tmp_path)
    assert r.returncode == 0 and 'a class-conditional U-Net (null class 10)' in r.stdout, (r.stdout + r.stderr)[-2000:]
    from diffusers import DDPMPipeline
    pipe = DDPMPipeline.from_pretrained(tmp_path / 'pipe', trust_remote_code=True)
    x = torch.zeros(2, 1, 32, 32)
    with torch.no_grad(): out = pipe.unet(x, torch.tensor([5, 5]), class_labels=torch.tensor([3, 10])).sample
    assert out.shape == x.shape and torch.isfinite(out).all()

def test_two_trains_into_one_folder(tmp_path):
    "A second `train` into a folder a live run holds is refused, naming the holder; after a kill, resume takes it over"
    p = subprocess.Popen([str(EXE), 'train', '--out', 'run', '--epochs', '2', *TINY], cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock, ck, start = tmp_path / 'run' / '.lock', tmp_path / 'run' / 'model.pt', time.time()
    while not lock.exists() and time.time() - start < 300 and p.poll() is None: time.sleep(0.02)
    r = run('train', '--out', 'run', '--epochs', '2', *TINY, cwd=tmp_path)
    assert r.returncode == 2 and f'is in use by process {p.pid}' in r.stderr, r.stderr[-2000:]
    while not ck.exists() and time.time() - start < 300 and p.poll() is None: time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    assert lock.exists()  # a killed run leaves its lock
    r = run('train', '--resume', 'run', cwd=tmp_path)
    assert r.returncode == 0 and 'which is gone; taking the folder over' in r.stdout, (r.stdout + r.stderr)[-2000:]
    assert not lock.exists()


def _sigint_default():
    "In the child: Ctrl-C as a terminal delivers it, whatever the test runner's process ignores (an ignored SIGINT is inherited)"
    signal.signal(signal.SIGINT, signal.SIG_DFL)

def _wait_for(path, p, timeout=300):
    start = time.time()
    while not path.exists() and time.time() - start < timeout and p.poll() is None: time.sleep(0.02)

def test_ctrl_c_says_how_to_resume(tmp_path):
    "A real SIGINT: exit 130, one line naming what was kept and the command that resumes; the resumed run says where"
    p = subprocess.Popen([str(EXE), 'train', '--out', 'r', '--epochs', '3', *TINY], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)
    _wait_for(tmp_path / 'r' / 'model.pt', p)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-3000:]
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err[-3000:]
    assert re.search(r'interrupted in epoch \d of 3; the checkpoint after epoch \d is kept: resume with '
                     r'`diffnotes train --resume r`', err), err
    r = run('train', '--resume', 'r', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r'^resuming r at epoch \d of 3$', r.stdout, re.M), r.stdout
    rows = (tmp_path / 'r' / 'history.csv').read_text().splitlines()
    assert rows[0] == 'epoch,train_loss,valid_loss,time' and [l.split(',')[0] for l in rows[1:]] == ['0', '1', '2'], rows
    before = (tmp_path / 'r' / 'samples.pt').read_bytes()
    r = run('train', '--resume', 'r', cwd=tmp_path)  # a finished run: nothing to do, nothing redrawn
    assert r.returncode == 0 and 'nothing left to train' in r.stdout and '--init r' in r.stdout, r.stdout
    assert (tmp_path / 'r' / 'samples.pt').read_bytes() == before

def test_ctrl_c_before_the_first_checkpoint(tmp_path):
    "A SIGINT before anything is saved says so and leaves no run folder"
    p = subprocess.Popen([str(EXE), 'train', '--out', 'r', '--epochs', '2', *TINY], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)
    _wait_for(tmp_path / 'r' / '.lock', p)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'nothing was' in err and 'Traceback' not in err, err[-3000:]
    assert not (tmp_path / 'r' / 'model.pt').exists() and not (tmp_path / 'r' / 'history.csv').exists()

def test_init_config_and_history(tmp_path):
    "`--init` starts a new run from a finished one's weights, keeping its architecture; `config.json` and `--config` round trip"
    r = run('train', '--out', 'a', '--epochs', '1', *TINY, '--keep', '1', '--keep-best', '--sample-every', '1', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    a = tmp_path / 'a'
    assert {'best.pt', 'checkpoints', 'samples', 'config.json', 'history.csv'} <= {p.name for p in a.iterdir()}
    assert [p.name for p in (a / 'checkpoints').iterdir()] == ['epoch-0001.pt'] and (a / 'samples' / 'epoch-0001.png').exists()
    import json
    cfg = json.loads((a / 'config.json').read_text())
    assert cfg['channels'] == [8, 16] and cfg['seed'] == 3 and cfg['epochs'] == 1, cfg
    assert len((a / 'history.csv').read_text().splitlines()) == 2
    r = run('train', '--init', 'a', '--out', 'b', '--epochs', '1', '--lr', '1e-9', '--n-samples', '4', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    from diffnotes.checkpoints import load_checkpoint
    ck = load_checkpoint(tmp_path / 'b')
    assert ck['config']['channels'] == [8, 16] and ck['config']['init'] == 'a' and ck['parent']['epochs_done'] == 1
    assert max_dw(weights(a), ck['model']) < 1e-4  # it started from a's weights (and barely moved at lr 1e-9)
    r = run('train', '--init', 'a', '--out', 'c', '--channels', '16,32', cwd=tmp_path)
    assert r.returncode == 2 and "keeps the parent's architecture" in r.stderr and '`--channels`' in r.stderr, r.stderr[-2000:]
    r = run('train', '--config', 'a/config.json', '--out', 'd', '--n-samples', '4', cwd=tmp_path)  # options given win
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads((tmp_path / 'd' / 'config.json').read_text())
    assert {k: v for k, v in d.items() if k != 'n_samples'} == {k: v for k, v in cfg.items() if k != 'n_samples'}
    assert d['n_samples'] == 4
    assert max_dw(weights(a), weights(tmp_path / 'd')) == 0  # the same configuration trains the same weights
