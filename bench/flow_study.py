"""The flow-matching study: rectified-flow recipes against the default run, at the default budget, seed by seed.

    python bench/flow_study.py [--recipes NAME ...] [--seeds 0 1 2] [--runs runs/flow_study]
                               [--out runs/flow_study/rows.json] [--n 512] [--tiny]

Each recipe of `RECIPES` trains `RunConfig(**recipe, seed=seed)` with `train_run` at the default budget (the embedded
subset, the default model and epochs) into RUNS/NAME-sSEED, then draws `n` images from the moving average of its
weights with DDIM, from sampling seed 1000 + seed, at each number of steps of `STEPS`, and with
ancestral DDPM in 50 steps (the default run's own sampler; a flow run's on its own grid). For a flow run DDIM on an even
grid is the flow's Euler method (the times 1 → 0 in equal steps, shifted; diffusers' grid, the runs' own, spends its
last call at a tiny time, which matters at very few steps); for the default it is DDIM on its trailing grid, which
also starts at T. Each draw is kept beside the run (`samples-K.pt`, float16) and scored with `ImageEval.report` (FID
at n with its interval, the floor, FID∞) and `fidelity_report` (precision, recall, density, coverage). The rows are
written after every run; a run already in the file is skipped and one that stopped on the way is resumed, so the
study goes on where it stopped. `--tiny` checks the script in a minute.

    python bench/flow_study.py --store ROWS.json [ROWS.json ...] [--dest diffnotes/results/flow_study.json]

merges the rows of several such files (two processes, each with its own `--out`) into `diffnotes/results/
flow_study.json`, the file the flow-matching chapter reads, in the layout its slow cell writes. The chapter's fresh
seeds (`--recipes 'default (v, Min-SNR-5)' 'flow, mode 1.29' --seeds 3 4 5`) are stored with
`--dest diffnotes/results/flow_fresh.json`. The recipe that the
chapter runs with three seeds beside uniform, logit-normal and OT is the best of mode, cosmap and shift on seed 0.
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
from diffnotes.studies import write_study

RECIPES = {'default (v, Min-SNR-5)': {},
           'flow, uniform t': dict(callback='flow'),
           'flow, logit-normal (0, 1)': dict(callback='flow', t_dist='logit_normal'),
           'flow, mode 1.29': dict(callback='flow', t_dist='mode'),
           'flow, cosmap': dict(callback='flow', t_dist='cosmap'),
           'flow, uniform t, shift 3': dict(callback='flow', shift=3.),
           'flow, uniform t, OT': dict(callback='flow', ot=True)}
STEPS = (1, 2, 4, 8, 16, 32, 50)
DRAWS = [('ddim', k) for k in STEPS] + [('ddpm', 50)]  # Euler/DDIM at each budget, and the default's own sampler
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

def run_one(name, seed, runs, ev, n, tiny, have=()):
    "Train one recipe with one seed (or finish it), then draw and score with every sampler and number of steps"
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
    for sampler, k in DRAWS:
        if (sampler, k) in have: continue
        spacing = grid(cfg, k) if sampler == 'ddim' else None
        x = sample_from(model, cfg, n, sampler, k, seed=1000 + seed, spacing=spacing)
        torch.save(x.half(), d / (f'samples-{k}.pt' if sampler == 'ddim' else f'samples-{sampler}-{k}.pt'))
        rows.append({'recipe': name, 'seed': seed, 'sampler': sampler, 'steps': k, 'train_seconds': round(secs, 1),
                     **score(ev, x)})
        print(f"{name:>28} s{seed} {sampler} {k:>2} steps  FID {rows[-1]['fid']:6.2f}  "
              f"precision {rows[-1]['precision']:.3f}  recall {rows[-1]['recall']:.3f}", flush=True)
    return rows

CHAPTER_KEYS = ('recipe', 'seed', 'sampler', 'steps', 'train_seconds', *KEEP[:-1], 'precision', 'recall', 'density',
                'coverage')

def store(files, dest='diffnotes/results/flow_study.json'):
    "Merge the rows of `files` (later files win) into the chapter's stored study (the fresh seeds' have no seed 0)"
    metas, rows = [json.loads(Path(f).read_text()) for f in files], {}
    for m in metas:
        for r in m['rows']: rows[r['recipe'], r['seed'], r.get('sampler', 'ddim'), r['steps']] = r
    rows = sorted(rows.values(), key=lambda r: (r['seed'], list(RECIPES).index(r['recipe']), r.get('sampler', 'ddim'),
                                                r['steps']))
    fid50 = {r['recipe']: r['fid'] for r in rows
             if r['seed'] == 0 and (r.get('sampler', 'ddim'), r['steps']) == ('ddim', 50)}
    best = min(('flow, mode 1.29', 'flow, cosmap', 'flow, uniform t, shift 3'),
               key=lambda k: fid50.get(k, float('inf'))) if fid50 else None
    study = {'device': 'CPU', 'threads': metas[0]['threads'], 'torch': metas[0]['torch'],
             'platform': platform.machine(), 'n': metas[0]['n'], 'draws': DRAWS,
             'recipes': {k: v for k, v in RECIPES.items() if k in {r['recipe'] for r in rows}},
             **({'best_of_seed_0': best} if best else {})}
    write_study(dest, study, [{k: {**r, 'sampler': r.get('sampler', 'ddim')}[k] for k in CHAPTER_KEYS} for r in rows])
    print(f'wrote {len(rows)} rows to {dest}' + (f'; best of mode, cosmap and shift on seed 0: {best}' if best else ''))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--recipes', nargs='*', default=list(RECIPES))
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--runs', default='runs/flow_study')
    ap.add_argument('--out', default=None)
    ap.add_argument('--n', type=int, default=512)
    ap.add_argument('--tiny', action='store_true')
    ap.add_argument('--store', nargs='*', default=None)
    ap.add_argument('--dest', default='diffnotes/results/flow_study.json')
    a = ap.parse_args()
    if a.store: return store(a.store, a.dest)
    out = Path(a.out or Path(a.runs) / 'rows.json')
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.exists() else {'rows': []}
    rows = [{**r, 'sampler': r.get('sampler', 'ddim')} for r in old['rows']]
    ev = ImageEval.fashion_mnist()
    for seed in a.seeds:  # seed by seed: every recipe has a first seed before any has a third
        for name in a.recipes:
            have = {(r['sampler'], r['steps']) for r in rows if (r['recipe'], r['seed']) == (name, seed)}
            if have >= set(DRAWS): continue
            rows += run_one(name, seed, a.runs, ev, a.n, a.tiny, have)
            meta = {'device': platform.processor() or platform.machine(), 'threads': torch.get_num_threads(),
                    'torch': torch.__version__, 'draws': DRAWS, 'n': a.n,
                    'recipes': RECIPES}
            out.write_text(json.dumps({**meta, 'rows': rows}, ensure_ascii=False, indent=1) + '\n')

if __name__ == '__main__': main()
