"""Training-step overhead of fastai + DDPMCallback over a hand-written PyTorch loop.

    python bench/train_overhead.py [--steps 30] [--bs 128] [--repeats 5] [--device cpu]

Both sides train the same TinyUNet (same initial weights) on the same pre-made batches of real
Fashion-MNIST images (the embedded subset): draw t, noisify, forward, ε-MSE, backward, Adam step.
The Learner side is `learn.fit` with `DDPMCallback` (no validation set, no progress bar: the
recorder and the callback events are what is measured); the hand-written side is a plain loop.
Runs are interleaved and the median times compared. A ratio of 1.00 means fastai and the callback
cost nothing beyond the arithmetic.
"""
import argparse, statistics, time, warnings
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
import torch
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.losses import MSELossFlat
from fastai.optimizer import Adam, OptimWrapper
from diffnotes.schedules import cosine_betas, abar_from_betas
from diffnotes.callbacks import DDPMCallback
from diffnotes.diffusion import noisify
from diffnotes.models import TinyUNet
from diffnotes.data import load_embedded, to_model_scale

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def make(device, bs, steps):
    imgs = load_embedded()['x_train']
    x = to_model_scale(imgs[[i % len(imgs) for i in range(bs * steps)]]).to(device)  # wrap around: no empty batch past the data
    batches = [(x[i * bs:(i + 1) * bs],) for i in range(steps)]
    torch.manual_seed(0)
    init = TinyUNet(channels=(16, 32, 64), emb_dim=64).state_dict()
    return batches, init

def learner_run(batches, init, device, amp=None):
    model = TinyUNet(channels=(16, 32, 64), emb_dim=64).to(device)
    model.load_state_dict(init)
    dls = DataLoaders(DataLoader(batches, bs=None), DataLoader([], bs=None), device=device)
    learn = Learner(dls, model, loss_func=MSELossFlat(), cbs=DDPMCallback(cosine_betas()),
                    opt_func=partial_adam, lr=1e-3)
    learn.remove_cb(learn.progress)
    if amp == 'bf16': learn = learn.to_bf16()
    learn.logger = lambda *a, **k: None
    def run():
        learn.fit(1, lr=1e-3)
        sync(device)
    return run

def partial_adam(params, lr): return OptimWrapper(params, torch.optim.Adam, lr=lr)

def manual_run(batches, init, device, amp=None):
    model = TinyUNet(channels=(16, 32, 64), emb_dim=64).to(device)
    model.load_state_dict(init)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    abar = abar_from_betas(cosine_betas()).float().to(device)
    def run():
        model.train()
        for (x0,) in batches:
            t = torch.randint(0, 1000, (len(x0),), device=device)
            x_t, eps = noisify(x0, t, abar)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == 'bf16'):
                pred = model(x_t, t)
            loss = torch.nn.functional.mse_loss(pred.float(), eps)
            loss.backward(); opt.step(); opt.zero_grad()
        sync(device)
    return run

def timed(f):
    start = time.perf_counter(); f(); return time.perf_counter() - start

def main(steps=30, bs=128, repeats=5, device='cpu', amp=None):
    device = torch.device(device)
    batches, init = make(device, bs, steps)
    runs = {'fastai + DDPMCallback': learner_run(batches, init, device, amp), 'hand-written loop': manual_run(batches, init, device, amp)}
    for f in runs.values(): f()  # warm-up
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, f in runs.items(): times[k].append(timed(f))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"torch {torch.__version__} on {device}{' (' + torch.cuda.get_device_name() + ')' if device.type == 'cuda' else ''}, "
          f"{torch.get_num_threads()} threads, amp={amp}, batch {bs}, {steps} steps per run, {repeats} interleaved repeats")
    for k, v in med.items(): print(f"{k}: {1000 * v / steps:.1f} ms per step")
    ratio = med['fastai + DDPMCallback'] / med['hand-written loop']
    print(f"ratio fastai/hand-written = {ratio:.4f}")
    return ratio

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=30); p.add_argument('--bs', type=int, default=128)
    p.add_argument('--repeats', type=int, default=5); p.add_argument('--device', default='cpu')
    p.add_argument('--amp', choices=('bf16',), default=None)
    a = p.parse_args()
    main(a.steps, a.bs, a.repeats, a.device, a.amp)
