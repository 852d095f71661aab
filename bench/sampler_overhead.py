"""Sampler overhead: what a sampling loop costs beyond its model calls, side by side with diffusers.

    python bench/sampler_overhead.py [--steps 50] [--bs 16] [--repeats 7]

Two measurements, each interleaved over `repeats` runs and compared by medians, so that machine noise
hits all of them alike:

1. Per step, with a trivial model (one multiply), diffnotes' `ddim_sample` (and its Euler and Heun
   samplers) against the standard diffusers loop (`DDIMScheduler.set_timesteps`, then `scheduler.step`
   on each timestep). With the model nearly free, the time per step is the sampler's own cost. Both
   build their schedule once, outside the timed runs (our `DiffusionSchedule`, diffusers' scheduler).
2. The schedule's set-up: `ddim_sample` given raw β's (as the home page calls it), given a prebuilt
   `DiffusionSchedule`, and given raw β's with `as_schedule`'s cache emptied before each call (what
   every call cost before the cache: the float64 tables rebuilt each time). Same trivial model.
3. With a small diffusers `UNet2DModel` (32×32, one channel), DDIM's wall time over `steps` bare
   forwards on a fixed input: 1.00 means the sampler costs nothing beyond the model.

    OMP_NUM_THREADS=1 python bench/sampler_overhead.py --out bench/results/sampler_overhead.json
"""
import argparse, json, platform, statistics, time
import torch
from diffusers import DDIMScheduler, UNet2DModel
from diffnotes.schedules import cosine_betas
from diffnotes.diffusion import DiffusionSchedule, as_schedule
from diffnotes.samplers import ddim_sample, euler_sample, heun_sample

class Net(torch.nn.Module):
    "diffusers' UNet2DModel returning a tensor, as the samplers expect"
    def __init__(self):
        super().__init__()
        self.unet = UNet2DModel(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
                                down_block_types=('DownBlock2D',) * 3, up_block_types=('UpBlock2D',) * 3,
                                layers_per_block=1)
    def forward(self, x, t): return self.unet(x, t).sample

class Trivial(torch.nn.Module):
    "A model that costs one elementwise multiply"
    def forward(self, x, t): return x * 0.5

def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start

def loops(model, shape, steps, betas):
    "The samplers to time, each a function of no arguments"
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule='squaredcos_cap_v2', clip_sample=True)
    def diffusers_loop():
        sched.set_timesteps(steps)
        xt = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        for ts in sched.timesteps: xt = sched.step(model(xt, ts.expand(shape[0])), ts, xt).prev_sample
    kw = dict(seed=0, progress=False)
    return {'diffusers DDIMScheduler loop': diffusers_loop,
            'diffnotes ddim_sample': lambda: ddim_sample(model, shape, betas, steps, **kw),
            'diffnotes euler_sample (DDIM grid)':
                lambda: euler_sample(model, shape, betas, steps, spacing='leading', **kw),
            'diffnotes heun_sample (per model call)': lambda: heun_sample(model, shape, betas, (steps + 1) // 2, **kw)}

def schedule_loops(model, shape, steps, betas):
    "`ddim_sample` on raw β's (cached), a prebuilt schedule, and raw β's with the cache emptied each call"
    sched, kw = DiffusionSchedule(betas), dict(seed=0, progress=False)
    def uncached():
        as_schedule.cache.clear()
        return ddim_sample(model, shape, betas, steps, **kw)
    return {'raw betas (cached schedule)': lambda: ddim_sample(model, shape, betas, steps, **kw),
            'prebuilt DiffusionSchedule': lambda: ddim_sample(model, shape, sched, steps, **kw),
            'raw betas, cache emptied each call (before)': uncached}

def medians(fs, repeats):
    for f in fs.values(): f()  # warm-up
    runs = {k: [] for k in fs}
    for _ in range(repeats):
        for k, f in fs.items(): runs[k].append(timed(f))
    return {k: statistics.median(v) for k, v in runs.items()}

@torch.no_grad()
def main(steps=50, bs=16, repeats=7, out=None):
    torch.manual_seed(0)
    shape, betas = (bs, 1, 32, 32), cosine_betas()
    sched = DiffusionSchedule(betas)  # built once, as diffusers' scheduler is
    res = dict(torch=torch.__version__, threads=torch.get_num_threads(), python=platform.python_version(),
               batch=bs, steps=steps, repeats=repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {bs}, {steps} steps, "
          f"{repeats} interleaved repeats")
    triv = medians(loops(Trivial(), shape, steps, sched), repeats)
    ref = triv['diffusers DDIMScheduler loop']
    print("1. per step with a trivial model")
    res['per_step_us'] = {}
    for k, v in triv.items():
        calls = 2 * ((steps + 1) // 2) - 1 if 'heun' in k else steps
        res['per_step_us'][k] = 1e6 * v / calls
        print(f"   {k}: {1e6 * v / calls:.0f} µs per model call, ratio to diffusers = {v / calls / (ref / steps):.3f}")
    setup = medians(schedule_loops(Trivial(), shape, steps, betas), repeats)
    print("2. ddim_sample's schedule set-up, per step with the same trivial model")
    res['schedule_per_step_us'] = {k: 1e6 * v / steps for k, v in setup.items()}
    for k, v in setup.items(): print(f"   {k}: {1e6 * v / steps:.0f} µs per step")
    net, x, t = Net().eval(), torch.randn(shape), torch.full((bs,), 500)
    def bare():
        for _ in range(steps): net(x, t)
    real = medians({'bare': bare, 'ddim': loops(net, shape, steps, sched)['diffnotes ddim_sample']}, repeats)
    res['unet'] = dict(bare_forward_ms=1000 * real['bare'] / steps, ddim_over_bare=real['ddim'] / real['bare'])
    print(f"3. with a small UNet2DModel: one bare forward {1000 * real['bare'] / steps:.2f} ms; "
          f"ddim_sample's wall time / {steps} bare forwards = {real['ddim'] / real['bare']:.4f}")
    if out:
        with open(out, 'w') as f: json.dump(res, f, indent=1)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=50)
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--out', default=None, help='write the numbers as JSON here')
    a = p.parse_args()
    main(a.steps, a.bs, a.repeats, a.out)
