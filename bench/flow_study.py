"""The flow-matching study: rectified-flow recipes against the default run, at the default budget, seed by seed.

    python bench/flow_study.py [--recipes NAME ...] [--seeds 0 1 2] [--runs runs/flow_study]
                               [--out runs/flow_study/rows.json] [--n 512] [--tiny]

Each recipe of `RECIPES` trains `RunConfig(**recipe, seed=seed)` with `train_run` at the default budget (the embedded
subset, the default model and epochs) into RUNS/NAME-sSEED, then draws `n` images from the moving average of its
weights with DDIM, from sampling seed 1000 + seed, at each number of steps of `STEPS`. For a flow run DDIM on an even
grid is the flow's Euler method (the times 1 → 0 in equal steps, shifted; diffusers' grid, the runs' own, spends its
last call at a tiny time, which matters at very few steps); for the default it is DDIM on its trailing grid, which
also starts at T. Each draw is kept beside the run (`samples-K.pt`, float16) and scored with `ImageEval.report` (FID
at n with its interval, the floor, FID∞) and `fidelity_report` (precision, recall, density, coverage). The rows are
written after every run; a run already in the file is skipped and one that stopped on the way is resumed, so the
study goes on where it stopped. `--tiny` checks the script in a minute.
"""
import argparse, contextlib, io, json, platform, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import torch
from diffnotes.config import RunConfig
from diffnotes.runs import train_run
from diffnotes.sampling import load_run, sample_from
from diffnotes.checkpoints import load_checkpoint
from diffnotes.eval import ImageEval
from diffnotes.fidelity import fidelity_report
from diffnotes.timesteps import shift_t

RECIPES = {'default (v, Min-SNR-5)': {},
           'flow, uniform t': dict(callback='flow'),
           'flow, logit-normal (0, 1)': dict(callback='flow', t_dist='logit_normal'),
           'flow, mode 1.29': dict(callback='flow', t_dist='mode'),
           'flow, cosmap': dict(callback='flow', t_dist='cosmap'),
           'flow, uniform t, shift 3': dict(callback='flow', shift=3.),
           'flow, uniform t, OT': dict(callback='flow', ot=True)}
STEPS = (1, 2, 4, 8, 16, 32, 50)
KEEP = ('n', 'fid', 'fid_ci95', 'fid_sd', 'floor', 'fid_inf', 'fid_inf_ci95', 'floor_inf', 'kid')

def grid(cfg, k):
    "Euler's k even steps from pure noise: a flow run's times 1 → 0, shifted; DDIM's trailing steps for the default"
    if cfg.callback != 'flow': return 'trailing'
    return shift_t(torch.linspace(1, 0, k + 1, dtype=torch.float64), cfg.shift)

def slug(name): return ''.join(c if c.isalnum() else '-' for c in name).strip('-')

def score(ev, x):
    "FID report and fidelity of images `x`, as plain numbers"
    rep, fid = ev.report(x), fidelity_report(ev, x)
    return {**{k: rep.get(k) for k in KEEP}, **{k: fid[k] for k in ('precision', 'recall', 'density', 'coverage')}}

def run_one(name, seed, runs, ev, n, tiny):
    "Train one recipe with one seed (or finish it), then draw and score at every number of steps"
    over = dict(epochs=1, channels=(8, 16)) if tiny else {}
    d = Path(runs) / f"{slug(name)}-s{seed}"
    cfg = RunConfig(**RECIPES[name], seed=seed, **over)
    start = time.perf_counter()
    done = load_checkpoint(d)['epochs_done'] if (d / 'model.pt').exists() else 0
    if done < cfg.epochs:  # a new run, or one that stopped on the way: resumed exactly
        with contextlib.redirect_stdout(io.StringIO()):
            train_run(cfg, d, resume=d if done else None, progress=False, sample=False)
    secs = time.perf_counter() - start
    model, cfg = load_run(d, device='cpu')
    rows = []
    for k in STEPS:
        x = sample_from(model, cfg, n, 'ddim', k, seed=1000 + seed, spacing=grid(cfg, k))
        torch.save(x.half(), d / f'samples-{k}.pt')
        rows.append({'recipe': name, 'seed': seed, 'steps': k, 'train_seconds': round(secs, 1), **score(ev, x)})
        print(f"{name:>28} s{seed} {k:>2} steps  FID {rows[-1]['fid']:6.2f}  precision {rows[-1]['precision']:.3f}  "
              f"recall {rows[-1]['recall']:.3f}", flush=True)
    return rows

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--recipes', nargs='*', default=list(RECIPES))
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--runs', default='runs/flow_study')
    ap.add_argument('--out', default=None)
    ap.add_argument('--n', type=int, default=512)
    ap.add_argument('--tiny', action='store_true')
    a = ap.parse_args()
    out = Path(a.out or Path(a.runs) / 'rows.json')
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.exists() else {'rows': []}
    rows, done = old['rows'], {(r['recipe'], r['seed']) for r in old['rows']}
    ev = ImageEval.fashion_mnist()
    for seed in a.seeds:  # seed by seed: every recipe has a first seed before any has a third
        for name in a.recipes:
            if (name, seed) in done: continue
            rows += run_one(name, seed, a.runs, ev, a.n, a.tiny)
            meta = {'device': platform.processor() or platform.machine(), 'threads': torch.get_num_threads(),
                    'torch': torch.__version__, 'steps': list(STEPS), 'n': a.n,
                    'recipes': {k: RECIPES[k] for k in a.recipes}}
            out.write_text(json.dumps({**meta, 'rows': rows}, ensure_ascii=False, indent=1) + '\n')

if __name__ == '__main__': main()
