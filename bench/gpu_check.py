"""GPU check (run it where a CUDA device is lent; it needs nothing but this checkout).

    python bench/gpu_check.py

1. the training-step ratio of `train_overhead.py` (fastai + DDPMCallback over a hand-written loop)
   on CUDA with bf16 autocast;
2. DDIM sampling throughput, 100 steps, in samples/s;
3. that the callback's part of a training step (drawing t, noisify, target, weighted loss) and the
   model's forward, backward and optimiser step make no host↔device synchronisation: they run under
   `torch.cuda.set_sync_debug_mode('error')`, which turns any synchronisation into an error.
"""
import time, warnings
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

def sync_free_step():
    """Training steps of the callback's work (P2 weights, importance-sampled t, learned variance), the forward, the loss,
    the sampler's update, backward and Adam, with host-device synchronisation forbidden"""
    from fastai.learner import Learner
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.losses import MSELossFlat
    dev = torch.device('cuda')
    x0 = to_model_scale(load_embedded()['x_train'][:128]).to(dev)
    cb = DDPMCallback(cosine_betas(), weight=partial(p2_weights, gamma=1.), t_sampler='importance', learn_variance=True)
    model = TinyUNet(channels=(16, 32, 64), emb_dim=64, learn_variance=True).to(dev)
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

if __name__ == '__main__':
    assert torch.cuda.is_available(), "no CUDA device"
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    ratio = train_overhead.main(steps=50, bs=128, repeats=5, device='cuda', amp='bf16')
    print(f"DDIM 100 steps, TinyUNet, batch 512: {ddim_throughput():.0f} samples/s")
    print(f"training step without host-device synchronisation: {sync_free_step()}")
