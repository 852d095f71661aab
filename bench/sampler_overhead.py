"""Sampler overhead: wall time of a whole sampling run over (steps × one bare model forward).

    python bench/sampler_overhead.py [--steps 50] [--bs 16] [--repeats 5]

Both samplers drive the same small diffusers `UNet2DModel` (32×32, one channel) on the CPU:
diffnotes' `ddim_sample`, and the standard diffusers loop (`DDIMScheduler.set_timesteps`, then
`scheduler.step` on each timestep). A ratio of 1.00 means the sampler costs nothing beyond the model.
Two denominators are reported: `steps` forwards of a bare loop on a fixed input, and the time the
model itself spent inside the same sampling run (timed around each call). The second removes what
the bare loop gets for free (the same input every call), so it isolates the sampler's own cost.
Runs are interleaved and medians compared, so machine noise hits all measurements alike.
"""
import argparse, statistics, time
import torch
from diffusers import DDIMScheduler, UNet2DModel
from diffnotes.schedules import cosine_betas
from diffnotes.samplers import ddim_sample

class Net(torch.nn.Module):
    "diffusers' UNet2DModel returning a tensor, as the samplers expect; `in_model` accumulates time spent in forward"
    def __init__(self):
        super().__init__()
        self.in_model = 0.
        self.unet = UNet2DModel(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
                                down_block_types=('DownBlock2D',) * 3, up_block_types=('UpBlock2D',) * 3, layers_per_block=1)
    def forward(self, x, t):
        start = time.perf_counter()
        out = self.unet(x, t).sample
        self.in_model += time.perf_counter() - start
        return out

def timed(f):
    start = time.perf_counter(); f(); return time.perf_counter() - start

@torch.no_grad()
def main(steps=50, bs=16, repeats=5):
    torch.manual_seed(0)
    model, shape = Net().eval(), (bs, 1, 32, 32)
    x, t = torch.randn(shape), torch.full((bs,), 500)
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule='squaredcos_cap_v2', clip_sample=True)
    def bare():
        for _ in range(steps): model(x, t)
    def ours(): ddim_sample(model, shape, cosine_betas(), steps, seed=0, progress=False)
    def theirs():
        sched.set_timesteps(steps)
        xt = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        for ts in sched.timesteps: xt = sched.step(model(xt, ts.expand(bs)), ts, xt).prev_sample
    bare(); ours(); theirs()  # warm-up
    runs = {'bare': [], 'ours': [], 'diffusers': [], 'ours_in_model': [], 'diffusers_in_model': []}
    for _ in range(repeats):
        for k, f in (('bare', bare), ('ours', ours), ('diffusers', theirs)):
            model.in_model = 0.
            runs[k].append(timed(f))
            if k != 'bare': runs[k + '_in_model'].append(runs[k][-1] / model.in_model)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {bs}, {steps} steps, {repeats} interleaved repeats")
    print(f"one bare forward: {1000 * med['bare'] / steps:.2f} ms")
    for k in ('ours', 'diffusers'):
        print(f"{'diffnotes ddim_sample' if k == 'ours' else 'diffusers DDIMScheduler loop'}: "
              f"{med[k]:.3f} s, ratio to {steps} bare forwards = {med[k] / med['bare']:.4f}, "
              f"ratio to its own time in the model = {med[k + '_in_model']:.4f}")

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=50); p.add_argument('--bs', type=int, default=16)
    p.add_argument('--repeats', type=int, default=5)
    a = p.parse_args()
    main(a.steps, a.bs, a.repeats)
