"""Two processes on CPU with the gloo backend: what changes under distributed data parallel."""
import json, os, socket, tempfile
import pytest
from pathlib import Path
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from diffnotes.timesteps import LossSecondMomentSampler, all_gather_padded

T, H, WORLD = 8, 3, 2

def batches(rank):
    "Each rank's batches of (t, loss): different sizes on the two ranks, so that the padding is exercised"
    g = torch.Generator().manual_seed(100 + rank)
    return [(torch.randint(0, T, (n,), generator=g), torch.rand(n, generator=g, dtype=torch.float64)) for n in ((5, 3, 7) if rank == 0 else (2, 6, 4))]

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def sampler_worker(rank, port, out):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=WORLD)
    try:
        s = LossSecondMomentSampler(T, history_per_term=H)
        for t, l in batches(rank): s.update(t, l)
        torch.save({'history': s.history, 'counts': s.counts, 'gathered': all_gather_padded(torch.arange(rank + 1))[0],
                    'images': all_gather_padded(torch.full((rank + 1, 1, 2, 2), float(rank)))[0]}, Path(out) / f'{rank}.pt')
    finally: dist.destroy_process_group()

def test_importance_sampler_history_is_the_union_on_every_rank():
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(sampler_worker, args=(free_port(), d), nprocs=WORLD)
        got = [torch.load(Path(d) / f'{r}.pt') for r in range(WORLD)]
    one = LossSecondMomentSampler(T, history_per_term=H)  # one process seeing the union of each step's batches, in rank order
    for step in zip(*(batches(r) for r in range(WORLD))):
        one.update(torch.cat([t for t, _ in step]), torch.cat([l for _, l in step]))
    for g in got:
        assert torch.equal(g['history'], one.history) and torch.equal(g['counts'], one.counts)
        assert g['gathered'].tolist() == [0, 0, 1]  # rank 0 sends [0], rank 1 sends [0, 1]: padded, gathered, trimmed
        assert g['images'].shape == (3, 1, 2, 2) and g['images'][:, 0, 0, 0].tolist() == [0., 1., 1.]  # and so do images

DUMP = '''
class Dump(Callback):
    "Each rank saves `state(learn)` at the end, or after epoch `stop` (a simulated kill, after the checkpoint)"
    order = 99
    def after_epoch(self):
        if self.epoch + 1 == stop:
            self.save()
            raise CancelFitException
    def after_fit(self): self.save()
    def save(self): torch.save(state(self.learn), f"{dump}/rank{world()[0]}.pt")
'''

DRIVER = '''
import sys, torch
from fastai.callback.core import Callback, CancelFitException
from diffnotes.config import RunConfig
from diffnotes.runs import train_run, diffusion_cb, ema_cb
from diffnotes.distributed import world
from diffnotes.sampling import sample_from
out, dump, stop, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), (sys.argv[4] if len(sys.argv) > 4 else None)
def state(learn):
    "What each rank saves: its weights, sampler history, validation loss and moving average"
    m = getattr(learn.model, 'module', learn.model)
    return {'model': m.state_dict(), 'history': diffusion_cb(learn).t_sampler.history,
            'valid_loss': learn.recorder.values[-1][1], 'ema': [p.clone() for p in ema_cb(learn).avg.shadow_params]}
<<DUMP>>cfg = RunConfig(channels=(8, 16), epochs=3, n_samples=8, sample_steps=5, importance=True)
learn = train_run(cfg, out, resume=resume, progress=False, cbs=[Dump()])
calls = [0]  # model calls on this rank: batches 0 and 2 on rank 0, batch 1 on rank 1, three steps each
hook = learn.model.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
x = sample_from(learn.model, cfg, 5, 'ddpm', 3, bs=2)  # batches shared by the ranks
torch.save({'x': x, 'calls': calls[0]}, f"{dump}/samples{world()[0]}.pt")
import torch.distributed as dist
if dist.is_initialized(): dist.destroy_process_group()  # as a script should: gloo can abort at exit ('terminate called without an active exception') if its group is left open

'''.replace('<<DUMP>>', DUMP)

def launch(n, *args, env=None):
    "Run the driver with `n` processes under torchrun (gloo on CPU), with `env` added to the environment; its output"
    import subprocess, sys
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(n), '--master_port', str(free_port()), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})},
                       timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout

def single_process(cfg, model_sd):
    "A one-process Learner of `cfg` holding the weights `model_sd`"
    from diffnotes.learner import build_learner
    learn = build_learner(cfg, None, False)
    learn.model.load_state_dict(model_sd)
    return learn

def test_two_processes_train_one_run_and_resume_across_world_sizes():
    from diffnotes.checkpoints import load_checkpoint
    from diffnotes.config import RunConfig
    from diffnotes.sampling import sample_from
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); (d / 'dump').mkdir(); driver = d / 'driver.py'; driver.write_text(DRIVER)
        out = launch(2, str(driver), str(d / 'run'), str(d / 'dump'), '1')  # one epoch of three, then a simulated kill
        ranks = [torch.load(d / 'dump' / f'rank{r}.pt') for r in range(2)]
        for k, v in ranks[0]['model'].items(): assert torch.equal(v, ranks[1]['model'][k]), k  # bit-identical weights
        assert torch.equal(ranks[0]['history'], ranks[1]['history'])                            # the same sampler history
        assert all(torch.equal(a, b) for a, b in zip(ranks[0]['ema'], ranks[1]['ema']))          # and the same moving average
        files = ['config.json', 'history.csv', 'loss.png', 'model.pt', 'samples.png', 'samples.pt']  # the cancelled fit still finishes the run
        assert sorted(p.name for p in (d / 'run').iterdir()) == files                            # one of each, one writer
        assert out.count('epoch 1/3') == 1                                                      # one log line, from rank 0
        ck = load_checkpoint(d / 'run')
        assert (ck['epochs_done'], ck['world_size'], ck['global_bs']) == (1, 2, 2 * ck['config']['bs'])
        for k, v in ranks[0]['model'].items(): assert torch.equal(v, ck['model'][k]), k  # no 'module.' prefix: the plain model
        cfg = RunConfig(**ck['config'])
        one = single_process(cfg, ranks[0]['model'])
        for r in ranks: assert abs(r['valid_loss'] - one.validate()[0]) < 1e-5  # the validation loss of one process, on each rank
        threads = torch.get_num_threads(); torch.set_num_threads(1)  # as each rank (OMP_NUM_THREADS=1): the same sums, bit for bit
        try: x = sample_from(one.model, cfg, 5, 'ddpm', 3, bs=2)
        finally: torch.set_num_threads(threads)
        drawn = [torch.load(d / 'dump' / f'samples{r}.pt') for r in range(2)]
        for r in drawn: assert torch.equal(r['x'], x)           # shared sampling = one process's, on every rank
        assert [r['calls'] for r in drawn] == [2 * 3, 1 * 3]     # and each rank drew only its own batches
        launch(1, str(driver), str(d / 'run'), str(d / 'dump'), '2', str(d / 'run'))  # one process resumes epoch 2 …
        ck = load_checkpoint(d / 'run')
        assert (ck['epochs_done'], ck['world_size'], ck['global_bs']) == (2, 1, ck['config']['bs'])
        launch(2, str(driver), str(d / 'run'), str(d / 'dump'), '0', str(d / 'run'))  # … and two processes finish the run
        ck = load_checkpoint(d / 'run')
        assert (ck['epochs_done'], ck['world_size']) == (3, 2)
        assert len(ck['history']['values']) == 3  # one validation row per epoch, across the three launches
        assert sorted(p.name for p in (d / 'run').iterdir()) == files
        assert [l.split(',')[0] for l in (d / 'run' / 'history.csv').read_text().splitlines()] == ['epoch', '0', '1', '2']

DRIVER_OPTIONS = '''
import sys, torch
from fastai.callback.core import Callback, CancelFitException
from diffnotes.config import RunConfig
from diffnotes.runs import train_run, find_cb
from diffnotes.distributed import world
from diffnotes.ema import PowerEMA
out, dump, stop, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), (sys.argv[4] if len(sys.argv) > 4 else None)
def state(learn):
    "What each rank saves: its weights and post-hoc averages"
    m = getattr(learn.model, 'module', learn.model)
    return {'model': m.state_dict(), 'phema': find_cb(learn, PowerEMA).state()}
<<DUMP>>cfg = RunConfig(channels=(8, 16), epochs=2, bs=48, n_samples=4, sample_steps=3,
                precision='bf16', clip_grad=1., accum=3, phema=True)
train_run(cfg, out, resume=resume, progress=False, cbs=[Dump()])
import torch.distributed as dist
if dist.is_initialized(): dist.destroy_process_group()
'''.replace('<<DUMP>>', DUMP)

def test_two_processes_with_precision_clipping_accumulation_and_phema():
    "bf16, clipped, 3 batches per step and post-hoc EMA on 2 ranks, killed after epoch 1 and resumed: the ranks stay identical"
    from diffnotes.checkpoints import load_checkpoint
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        driver = d / 'driver.py'
        driver.write_text(DRIVER_OPTIONS)
        for name in ('killed', 'resumed'): (d / name).mkdir()
        launch(2, str(driver), str(d / 'run'), str(d / 'killed'), '1')
        ck = load_checkpoint(d / 'run')
        assert (ck['epochs_done'], ck['effective_bs'], ck['world_size'], ck['scaler']) == (1, 48 * 3 * 2, 2, {})
        assert ck['accum'] is not None and ck['phema']['t'] > 0  # an unfinished accumulation and the averages are kept
        launch(2, str(driver), str(d / 'run'), str(d / 'resumed'), '0', str(d / 'run'))
        for k in ('killed', 'resumed'):
            a = [torch.load(d / k / f'rank{r}.pt') for r in range(2)]
            for n, v in a[0]['model'].items(): assert torch.equal(v, a[1]['model'][n]), (k, n)  # the ranks agree
            for x, y in zip(a[0]['phema']['averages'], a[1]['phema']['averages']):
                assert all(torch.equal(p, q) for p, q in zip(x, y)), k
        assert load_checkpoint(d / 'run')['epochs_done'] == 2
        assert sorted(p.name for p in (d / 'run' / 'phema').iterdir()) == ['0001.pt', '0002.pt']  # one writer

DRIVER_COND = '''
import json, os, sys, torch
from fastai.callback.core import Callback, CancelFitException
from diffnotes.config import RunConfig
from diffnotes.runs import train_run
from diffnotes.distributed import world
from diffnotes.sampling import sample_from
from diffnotes.checkpoints import load_checkpoint
out, dump, stop, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), (sys.argv[4] if len(sys.argv) > 4 else None)
def state(learn):
    "What each rank saves: its weights"
    return {'model': getattr(learn.model, 'module', learn.model).state_dict()}
<<DUMP>>extra = json.loads(os.environ.get('DIFFNOTES_TEST_RUN', '{}'))  # e.g. a flow run's options
cfg = RunConfig(cond=True, p_uncond=0.2, channels=(8, 16), epochs=2, bs=32, n_samples=4, sample_steps=3, **extra)
learn = train_run(cfg, out, resume=resume, progress=False, cbs=[Dump()])
cfg = RunConfig(**load_checkpoint(out)['config'])  # with the classes the data had
x = sample_from(learn.model, cfg, 5, 'ddpm', 3, bs=2, labels=torch.tensor([1, 3, 5, 7, 9]), guidance=2.)
torch.save({'x': x}, f"{dump}/samples{world()[0]}.pt")
import torch.distributed as dist
if dist.is_initialized(): dist.destroy_process_group()
'''.replace('<<DUMP>>', DUMP)

@pytest.mark.parametrize('extra', [{}, {'callback': 'flow', 'ot': True, 't_dist': 'logit_normal'}], ids=['ddpm', 'flow, OT'])
def test_two_processes_train_a_conditional_run_and_resume_it(extra):
    "A class-conditional run on 2 ranks, killed after epoch 1 and resumed: the ranks agree, and guided sampling is shared"
    from diffnotes.checkpoints import load_checkpoint
    from diffnotes.config import RunConfig
    from diffnotes.sampling import sample_from
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); (d / 'dump').mkdir(); driver = d / 'driver.py'; driver.write_text(DRIVER_COND)
        env = {'DIFFNOTES_TEST_RUN': json.dumps(extra)}
        launch(2, str(driver), str(d / 'run'), str(d / 'dump'), '1', env=env)
        assert load_checkpoint(d / 'run')['epochs_done'] == 1
        launch(2, str(driver), str(d / 'run'), str(d / 'dump'), '0', str(d / 'run'), env=env)
        ck = load_checkpoint(d / 'run')
        assert (ck['epochs_done'], ck['world_size'], ck['config']['n_classes']) == (2, 2, 10)
        ranks = [torch.load(d / 'dump' / f'rank{r}.pt') for r in range(2)]
        for k, v in ranks[0]['model'].items(): assert torch.equal(v, ranks[1]['model'][k]), k
        for k, v in ranks[0]['model'].items(): assert torch.equal(v, ck['model'][k]), k
        cfg = RunConfig(**ck['config'])
        one = single_process(cfg, ranks[0]['model'])
        threads = torch.get_num_threads(); torch.set_num_threads(1)
        try: x = sample_from(one.model, cfg, 5, 'ddpm', 3, bs=2, labels=torch.tensor([1, 3, 5, 7, 9]), guidance=2.)
        finally: torch.set_num_threads(threads)
        for r in range(2): assert torch.equal(torch.load(d / 'dump' / f'samples{r}.pt')['x'], x)

def test_sample_command_under_torchrun_shares_the_images():
    ("`diffnotes sample` on 2 processes, unguided and autoguided: the ranks split the batches, rank 0 writes once, and "
     "the images are one process's")
    import subprocess, sys, contextlib, io
    from diffnotes.config import RunConfig
    from diffnotes.runs import train_run
    from diffnotes.data import tensor_dls, load_embedded
    exe = str(Path(sys.executable).parent / 'diffnotes')
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); emb = load_embedded()
        with contextlib.redirect_stdout(io.StringIO()):
            train_run(RunConfig(channels=(8, 16), epochs=1, bs=32), d / 'run', progress=False, sample=False,
                      dls=tensor_dls(emb['x_train'][:64], emb['x_test'][:32], bs=32, device='cpu'))
        # the default `--n` (64): torchrun's own parser takes `--n` for an abbreviation of its options
        args = ['sample', str(d / 'run'), '--bs', '16', '--steps', '3']
        out = launch(2, exe, *args, '--out', str(d / 'two'))
        assert out.count('wrote ') == 1, out  # one writer
        env = {**os.environ, 'OMP_NUM_THREADS': '1'}
        r = subprocess.run([exe, *args, '--out', str(d / 'one')], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        two, one = torch.load(d / 'two.pt'), torch.load(d / 'one.pt')
        assert two.shape == (64, 1, 32, 32) and torch.allclose(two, one, atol=1e-6), (two - one).abs().max()
        guided = args + ['--guide', str(d / 'run'), '--guide-raw', '--guidance', '2']  # each rank loads the guide
        out = launch(2, exe, *guided, '--out', str(d / 'two-g'))
        assert out.count('wrote ') == 1 and 'guided by' in out, out
        r = subprocess.run([exe, *guided, '--out', str(d / 'one-g')], capture_output=True, text=True, env=env,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        two, one = torch.load(d / 'two-g.pt'), torch.load(d / 'one-g.pt')
        assert torch.allclose(two, one, atol=1e-6) and not torch.allclose(two, torch.load(d / 'one.pt'), atol=1e-3)
