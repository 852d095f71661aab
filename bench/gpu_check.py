"""GPU check (run it where a CUDA device is lent; it needs nothing but this checkout).

    python bench/gpu_check.py [--sync-only]

1. the training-step ratio of `train_overhead.py` (fastai + DDPMCallback over a hand-written loop)
   on CUDA with bf16 autocast;
2. DDIM sampling throughput, 100 steps, in samples/s;
3. that the callback's part of a training step (drawing t, noisify, target, weighted loss) and the
   model's forward, backward and optimiser step make no host↔device synchronisation: they run under
   `torch.cuda.set_sync_debug_mode('error')`, which turns any synchronisation into an error; for the
   callback of P2 with importance-sampled t and a learned variance, and for those of `RunConfig`'s default
   and of other weightings of the results table, discrete and continuous. `--sync-only` runs only this and 4.;
4. a small run trained on the GPU, killed after its first epoch and resumed: the batches and the model must be on
   the GPU, and the resumed weights close to those of the same run uninterrupted.
"""
import sys, time, warnings
from functools import partial
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
import torch
from diffnotes.schedules import cosine_betas
from diffnotes.weights import p2_weights
from diffnotes.models import TinyUNet
from diffnotes.samplers import ddim_sample
from diffnotes.callbacks import DDPMCallback
from diffnotes.data import load_embedded, to_model_scale
import train_overhead

def sync_free_step(cb=None, learn_variance=True):
    """Training steps of the callback's work (default: P2 weights, importance-sampled t, learned variance), the forward, the loss,
    the sampler's update, backward and Adam, with host-device synchronisation forbidden"""
    from fastai.learner import Learner
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.losses import MSELossFlat
    dev = torch.device('cuda')
    x0 = to_model_scale(load_embedded()['x_train'][:128]).to(dev)
    cb = cb or DDPMCallback(cosine_betas(), weight=partial(p2_weights, gamma=1.), t_sampler='importance', learn_variance=True)
    model = TinyUNet(channels=(16, 32, 64), emb_dim=64, learn_variance=learn_variance).to(dev)
    learn = Learner(DataLoaders(DataLoader([(x0,)], bs=None), DataLoader([], bs=None), device=dev), model, loss_func=MSELossFlat(), cbs=cb)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    learn('before_fit'); learn.training = True
    def step():
        learn.xb = (x0,); cb.before_batch()
        learn.pred = model(*learn.xb)
        learn.loss = learn.loss_func(learn.pred, *learn.yb)
        cb.after_loss()
        learn.loss.backward(); opt.step(); opt.zero_grad()
    step()                                                # first batch: tables move to the GPU (allowed to sync)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        for _ in range(3): step()
    finally: torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    return True

def ddim_throughput(n=512, steps=100):
    model = TinyUNet(channels=(16, 32, 64), emb_dim=64).cuda().eval()
    ddim_sample(model, (n, 1, 32, 32), cosine_betas(), 10, seed=0, progress=False)  # warm-up
    torch.cuda.synchronize(); start = time.perf_counter()
    ddim_sample(model, (n, 1, 32, 32), cosine_betas(), steps, seed=0, progress=False)
    torch.cuda.synchronize()
    return n / (time.perf_counter() - start)

def run_and_resume():
    """A small run on the GPU, stopped after its first epoch's checkpoint and resumed: where the batches and the model were,
    and max |Δw| against the same run uninterrupted (cuDNN's kernels need not be deterministic, so small, not 0)"""
    import contextlib, io, tempfile
    from fastai.callback.core import Callback
    from diffnotes.data import tensor_dls
    from diffnotes.config import RunConfig
    from diffnotes.runs import RunCheckpoint, train_run
    from diffnotes.checkpoints import load_checkpoint
    emb = load_embedded()
    dls = lambda: tensor_dls(emb['x_train'][:512], emb['x_test'][:64], bs=64)
    cfg = RunConfig(channels=(8, 16), epochs=2, n_samples=8, sample_steps=5)
    class Kill(Callback):
        order = RunCheckpoint.order + 1  # after the epoch's checkpoint is written
        def after_epoch(self):
            if self.epoch == 0: raise KeyboardInterrupt
    with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()):
        full = train_run(cfg, f'{d}/full', dls=dls(), progress=False)
        try: train_run(cfg, f'{d}/k', dls=dls(), progress=False, cbs=[Kill()])
        except KeyboardInterrupt: pass
        done = load_checkpoint(f'{d}/k')['epochs_done']
        resumed = train_run(resume=f'{d}/k', dls=dls(), progress=False)
    dw = max((p - q).abs().max().item() for p, q in zip(full.model.state_dict().values(), resumed.model.state_dict().values()))
    return {'batches on': str(full.dls.device), 'model on': str(next(full.model.parameters()).device), 'killed after epochs': done, 'max |Δw| resumed vs full': dw}

if __name__ == '__main__':
    assert torch.cuda.is_available(), "no CUDA device"
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    if '--sync-only' not in sys.argv:
        ratio = train_overhead.main(steps=50, bs=128, repeats=5, device='cuda', amp='bf16')
        print(f"DDIM 100 steps, TinyUNet, batch 512: {ddim_throughput():.0f} samples/s")
    from diffnotes.config import RunConfig
    from diffnotes.learner import build_callback
    def no_sync(label, *args):
        try: print(f"training step without host-device synchronisation, {label}: {sync_free_step(*args)}", flush=True)
        except RuntimeError as e: print(f"training step, {label}: FAILED (a host-device synchronisation raises here): {e}", flush=True)
    no_sync('P2, importance-sampled t, learned variance')
    for kw in ({}, dict(callback='continuous', weight='sigmoid', sigmoid_b=-2.), dict(callback='continuous', weight='edm'),
               dict(objective='eps', weight='p2'), dict(objective='eps', weight='sigmoid', sigmoid_b=-2.)):  # the default run's callback, then others of the table
        no_sync(f"the callback of RunConfig({', '.join(f'{k}={v!r}' for k, v in kw.items())})", build_callback(RunConfig(**kw)), False)
    print(f"a run on the GPU, killed and resumed: {run_and_resume()}", flush=True)
