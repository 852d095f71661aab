"""Where the default run's time goes on this machine, and what the usual speed-ups buy, measured side by side.

    python bench/train_profile.py [--steps 30] [--repeats 3] [--out bench/results/train_profile.json]

Part 1 profiles the default run's Learner (`build_learner(RunConfig())` on the embedded subset): one
training epoch's steps under `torch.profiler`, with the time of the operators grouped (convolutions,
GroupNorm, the optimiser, the rest), and beside it the time of the pieces a run adds: iterating the
data alone, one validation pass, the moving average's updates. Part 2 times `steps` training steps
of the same Learner in variants, interleaved and repeated, and reports images per second and the
ratio to the baseline measured in the same run: channels_last, `torch.compile`, torch's Adam with
`foreach` and with `fused` (through fastai's `OptimWrapper`), bf16 autocast (`precision='bf16'`, alone and with
channels_last), one thread instead of all, and diffusers' `UNet2DModel` at the same widths (`model='unet'`). Part 3
measures fp32, channels_last and bf16 again in a process whose oneDNN is held to AVX2 (`ONEDNN_MAX_CPU_ISA`), as
on a CPU without bf16 units, where `precision='auto'` keeps fp32.
"""
import argparse, contextlib, io, json, os, statistics, subprocess, sys, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import torch
from fastai.optimizer import OptimWrapper
from diffnotes.config import RunConfig
from diffnotes.learner import build_learner
from diffnotes.runs import ema_cb
from diffnotes.ema import EMA

GROUPS = {'convolutions': ('conv',), 'GroupNorm': ('group_norm',), 'optimiser': ('adam', 'foreach', 'addcdiv', 'lerp'),
          'matmul': ('mm', 'linear', 'matmul'), 'elementwise': ('add', 'mul', 'sub', 'div', 'silu', 'sigmoid', 'copy', 'fill')}

def learner(opt=None, channels_last=False, compiled=False, precision='fp32', model='tiny'):
    "The default run's Learner, quiet, on the CPU, contiguous; optionally torch's Adam, channels_last, compiled, bf16, UNet2DModel"
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()): learn = build_learner(RunConfig(precision=precision, model=model), progress=False)
    learn.remove_cbs([c for c in learn.cbs if type(c).__name__ == 'EpochLine'])
    if opt: learn.opt_func = lambda params, lr: OptimWrapper(params, torch.optim.Adam, lr=lr, **opt)
    fmt = torch.channels_last if channels_last else torch.contiguous_format  # `build_learner` picks one itself
    learn.model = learn.model.to(memory_format=fmt)
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

MAKERS = {'baseline (fp32, fastai Adam)': lambda: learner(), 'channels_last': lambda: learner(channels_last=True),
          'torch Adam, foreach': lambda: learner(opt=dict(foreach=True)), 'torch Adam, fused': lambda: learner(opt=dict(fused=True)),
          'torch.compile': lambda: learner(compiled=True), 'one thread': lambda: learner(),
          'bf16': lambda: learner(precision='bf16'), 'bf16, channels_last': lambda: learner(channels_last=True, precision='bf16'),
          "diffusers' UNet2DModel (same widths)": lambda: learner(model='unet'),
          "diffusers' UNet2DModel, bf16": lambda: learner(model='unet', precision='bf16')}
CAPPED = ('baseline (fp32, fastai Adam)', 'channels_last', 'bf16')  # measured again with oneDNN held to AVX2 (no bf16 units)

def variants(steps, repeats, names=tuple(MAKERS)):
    "Images per second of each variant, interleaved, median of `repeats`"
    nt = torch.get_num_threads()
    learners, times = {k: MAKERS[k]() for k in names}, {k: [] for k in names}
    for k, l in learners.items():  # warm-up (and compilation) outside the timing
        torch.set_num_threads(1 if k == 'one thread' else nt)
        train_steps(l, 3)
    for _ in range(repeats):
        for k, l in learners.items():
            torch.set_num_threads(1 if k == 'one thread' else nt)
            times[k].append(train_steps(l, steps))
    torch.set_num_threads(nt)
    bs = next(iter(learners.values())).dls.train.bs
    base = names[0]
    ips = {k: steps * bs / statistics.median(v) for k, v in times.items()}
    return {'threads': nt, 'repeats': repeats, 'images_per_s': ips, 'ratio_to_baseline': {k: v / ips[base] for k, v in ips.items()}}

def capped(steps, repeats):
    "The `CAPPED` variants in a process whose oneDNN may use AVX2 at most, as on a CPU without AVX-512 or AMX"
    code = f"import json, train_profile as t; print(json.dumps(t.variants({steps}, {repeats}, t.CAPPED)))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=Path(__file__).parent,
                       env={**os.environ, 'ONEDNN_MAX_CPU_ISA': 'AVX2'}, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=30)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--out', default='bench/results/train_profile.json')
    a = p.parse_args()
    res = {'torch': torch.__version__, 'cpu_capability': torch.backends.cpu.get_cpu_capability(),
           'profile': profile(a.steps), 'variants': variants(a.steps, a.repeats), 'avx2_cap': capped(a.steps, a.repeats)}
    Path(a.out).write_text(json.dumps(res, indent=1) + '\n')
    print(json.dumps(res, indent=1))
