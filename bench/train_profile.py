"""Where the default run's time goes on this machine, and what the usual speed-ups buy, measured side by side.

    python bench/train_profile.py [--steps 30] [--repeats 3] [--out bench/results/train_profile.json]

Part 1 profiles the default run's Learner (`build_learner(RunConfig())` on the embedded subset): one
training epoch's steps under `torch.profiler`, with the time of the operators grouped (convolutions,
GroupNorm, the optimiser, the rest), and beside it the time of the pieces a run adds: iterating the
data alone, one validation pass, the moving average's updates. Part 2 times `steps` training steps
of the same Learner in variants, interleaved and repeated, and reports images per second and the
ratio to the baseline measured in the same run: channels_last, `torch.compile`, torch's Adam with
`foreach` and with `fused` (through fastai's `OptimWrapper`), and one thread instead of all.
"""
import argparse, contextlib, io, json, statistics, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import torch
from fastai.optimizer import OptimWrapper
from diffnotes.runs import RunConfig, build_learner, ema_cb
from diffnotes.callbacks import EMA

GROUPS = {'convolutions': ('conv',), 'GroupNorm': ('group_norm',), 'optimiser': ('adam', 'foreach', 'addcdiv', 'lerp'),
          'matmul': ('mm', 'linear', 'matmul'), 'elementwise': ('add', 'mul', 'sub', 'div', 'silu', 'sigmoid', 'copy', 'fill')}

def learner(opt=None, channels_last=False, compiled=False):
    "The default run's Learner, quiet, on the CPU; optionally with torch's Adam, channels_last or a compiled model"
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()): learn = build_learner(RunConfig(), progress=False)
    learn.remove_cbs([c for c in learn.cbs if type(c).__name__ == 'EpochLine'])
    if opt: learn.opt_func = lambda params, lr: OptimWrapper(params, torch.optim.Adam, lr=lr, **opt)
    if channels_last: learn.model = learn.model.to(memory_format=torch.channels_last)
    if compiled: learn.model = torch.compile(learn.model)
    return learn

def train_steps(learn, steps):
    "Seconds for `steps` training steps (no validation), after the Learner has run once"
    from fastai.callback.core import CancelEpochException, Callback
    class Stop(Callback):
        def after_batch(self):
            if self.iter + 1 >= steps: raise CancelEpochException
    learn.dls.valid_ds_backup = None
    start = time.perf_counter()
    with learn.no_logging(), learn.added_cbs(Stop()): learn.fit(1, 1e-3)
    return time.perf_counter() - start

def profile(steps):
    "Operator time of `steps` training steps, grouped, and the time of data, validation and the average"
    from torch.profiler import profile as prof, ProfilerActivity
    learn = learner()
    train_steps(learn, 3)
    with prof(activities=[ProfilerActivity.CPU]) as p: wall = train_steps(learn, steps)
    ops = {e.key: e.self_cpu_time_total / 1e6 for e in p.key_averages()}
    grouped = {g: 0. for g in GROUPS}
    for k, v in ops.items():
        g = next((g for g, keys in GROUPS.items() if any(s in k.lower() for s in keys)), 'other operators')
        grouped[g] = grouped.get(g, 0.) + v
    start = time.perf_counter()
    for i, _ in enumerate(learn.dls.train):
        if i + 1 >= steps: break
    data = time.perf_counter() - start
    start = time.perf_counter()
    with learn.no_logging(): learn.validate()
    valid = time.perf_counter() - start
    ema = ema_cb(learn)
    start = time.perf_counter()
    for _ in range(steps): ema.avg.step(learn.model.parameters())
    ema_t = time.perf_counter() - start
    n_train = len(learn.dls.train)
    return {'steps': steps, 'wall_s': wall, 'operators_s': grouped, 'data_s': data, 'ema_s': ema_t,
            'validation_pass_s': valid, 'train_batches_per_epoch': n_train, 'bs': learn.dls.train.bs}

def variants(steps, repeats):
    "Images per second of each variant, interleaved, median of `repeats`"
    nt = torch.get_num_threads()
    makers = {'baseline (fastai Adam)': lambda: learner(), 'channels_last': lambda: learner(channels_last=True),
              'torch Adam, foreach': lambda: learner(opt=dict(foreach=True)), 'torch Adam, fused': lambda: learner(opt=dict(fused=True)),
              'torch.compile': lambda: learner(compiled=True), 'one thread': lambda: learner()}
    learners, times = {k: f() for k, f in makers.items()}, {k: [] for k in makers}
    for k, l in learners.items():  # warm-up (and compilation) outside the timing
        torch.set_num_threads(1 if k == 'one thread' else nt)
        train_steps(l, 3)
    for _ in range(repeats):
        for k, l in learners.items():
            torch.set_num_threads(1 if k == 'one thread' else nt)
            times[k].append(train_steps(l, steps))
    torch.set_num_threads(nt)
    bs = learners['baseline (fastai Adam)'].dls.train.bs
    ips = {k: steps * bs / statistics.median(v) for k, v in times.items()}
    return {'threads': nt, 'repeats': repeats, 'images_per_s': ips,
            'ratio_to_baseline': {k: v / ips['baseline (fastai Adam)'] for k, v in ips.items()}}

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=30)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--out', default='bench/results/train_profile.json')
    a = p.parse_args()
    res = {'torch': torch.__version__, 'profile': profile(a.steps), 'variants': variants(a.steps, a.repeats)}
    Path(a.out).write_text(json.dumps(res, indent=1) + '\n')
    print(json.dumps(res, indent=1))
