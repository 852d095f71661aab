"""The guidance sweep of the guidance chapter: a class-conditional default run per seed, scored at each guidance setting
by FID (n, the interval of `ImageEval.report`, the real-data floor, FID∞, KID), precision, recall, density and
coverage in the same feature space, and the classifier's accuracy on the requested class.

    python bench/guidance_sweep.py --seeds 0 1 2 [--out diffnotes/results/guidance.json] [--grids FOLDER] [--tiny]
    python bench/guidance_sweep.py --merge part0.json part1.json part2.json --out diffnotes/results/guidance.json

Each seed trains `RunConfig(cond=True, seed=seed)` (the default budget: the embedded subset, 24 epochs) and calls
`guidance_sweep` on the moving average of its weights, with 512 class-balanced samples per setting from sampling seed
1000 + seed, the same noise for every setting. Every seed is trained first (into `--runs`, where a finished run is
reused), then the settings are drawn one at a time for every seed, in the order of `--settings`, and the file is
written after each row: a sweep stopped early keeps every seed for the settings it reached. Precision and recall
compare the samples with as many real test features (`real_subset`); the same metrics of n real training images
are stored as `real_prdc`, the values of a perfect model. `--grids` writes, for the first seed, one grid per setting
of `GRIDS`, a row per class. The file records the device, the thread count and the torch version. `--tiny` checks
the script in a minute. Seeds can also run as separate processes, each writing its own file, joined by `--merge`,
which keeps only the settings that every seed reached (and so also trims a sweep stopped early).
"""
import argparse, contextlib, io, json, os, platform, tempfile, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import torch
from diffnotes.config import RunConfig
from diffnotes.runs import train_run, save_grid
from diffnotes.sampling import load_run
from diffnotes.studies import guidance_sweep, GUIDANCE_SWEEP, short, write_study
from diffnotes.eval import ImageEval, fid_infinity
from diffnotes.fidelity import prdc

GRIDS = {'w=0': 'guidance_w0.png', 'w=1': 'guidance_w1.png', 'w=3': 'guidance_w3.png',
         'w=3, σ∈(0.3, 3]': 'guidance_w3_interval.png'}
SETTINGS = ['w=0', 'w=1', 'w=3', 'w=1.5', 'w=3, σ∈(0.3, 3]', 'w=5', 'w=2']  # the order they are drawn in

def device_name():
    return torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'

def by_class(x, n_classes, per_row=8):
    "The first `per_row` images of each class of a class-balanced draw (image i of class i mod C), a row per class"
    return torch.cat([x[c::n_classes][:per_row] for c in range(n_classes)])

def real_subset(ev, n, seed=0):
    "`n` of the reference's real test features, the real side of precision and recall (as many as the samples)"
    g = torch.Generator().manual_seed(seed)
    return ev.ref['kid_feats'].double()[torch.randperm(len(ev.ref['kid_feats']), generator=g)[:n]].cpu()

def train(seed, runs, tiny):
    "Train the conditional default run with `seed` into `runs`/seed{seed}, unless it is there; its training seconds"
    over = dict(epochs=1, channels=(8, 16)) if tiny else {}
    d, log = Path(runs) / f'seed{seed}', Path(runs) / f'seed{seed}.seconds'
    if log.exists(): return float(log.read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        train_run(RunConfig(cond=True, seed=seed, **over), d, progress=False, sample=False)
        secs = time.perf_counter() - start
    log.write_text(f'{secs:.1f}')
    return secs

def score(seed, name, run, cfg, ev, n, real, secs):
    "One row: `guidance_sweep` at the setting `name`, with FID∞, precision, recall, density and coverage"
    xs, start = {}, time.perf_counter()
    r = guidance_sweep(run, cfg, ev, {name: GUIDANCE_SWEEP[name]}, n=n, seed=1000 + seed, grids=xs)[0]
    f = ev.features(xs[name]).cpu()
    r['fid_inf'] = fid_infinity(f, ev.ref_stats)['fid_inf'] if len(f) >= 4 * f.shape[1] else None
    r.update(prdc(real, f))
    r.update(seed=seed, train_seconds=round(secs, 1), seconds=round(time.perf_counter() - start, 1))
    print(seed, f"{name:>16}  FID {r['fid']:6.2f} ({r['fid_ci95'][0]:.2f}–{r['fid_ci95'][1]:.2f})  "
          f"P {r['precision']:.3f}  R {r['recall']:.3f}  acc {r['acc']:.3f}  {r['seconds']:.0f} s", flush=True)
    return {k: short(v) for k, v in r.items()}, xs[name]

def write(out, rows, meta):
    "The rows, by seed and setting, and `meta` as the chapter's JSON (`write_study`)"
    write_study(out, meta, sorted(rows, key=lambda r: (r['seed'], list(GUIDANCE_SWEEP).index(r['setting']))))

def merge(files, out):
    "Join the rows of `files` into `out`, keeping only the settings that every seed reached (a sweep stopped early)"
    parts = [json.loads(Path(f).read_text()) for f in files]
    rows = [r for p in parts for r in p['rows']]
    seeds = {r['seed'] for r in rows}
    done = [k for k in GUIDANCE_SWEEP if {r['seed'] for r in rows if r['setting'] == k} == seeds]
    meta = {k: v for k, v in parts[0].items() if k != 'rows'}
    meta['settings'] = {k: v for p in parts for k, v in p['settings'].items() if k in done}
    meta['settings'] = {k: meta['settings'][k] for k in done}  # in the order of `GUIDANCE_SWEEP`
    write(out, [r for r in rows if r['setting'] in done], meta)

def meta_of(ev, n, settings, real):
    "What the file records besides its rows: device, threads, recipe, settings, and the real-data references at n"
    fl = ev.floor_features(n).cpu()
    return {'device': device_name(), 'threads': torch.get_num_threads(), 'torch': torch.__version__,
            'platform': platform.machine(), 'recipe': 'RunConfig(cond=True, seed=seed)', 'n': n,
            'settings': {k: [GUIDANCE_SWEEP[k][0], GUIDANCE_SWEEP[k][1]] for k in settings},
            'prdc_k': [3, 5], 'real_prdc': {k: short(v) for k, v in prdc(real, fl).items()},
            'floor_inf': short(fid_infinity(fl, ev.ref_stats)['fid_inf']) if n >= 4 * fl.shape[1] else None}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--settings', nargs='*', default=SETTINGS)
    ap.add_argument('--out', default='diffnotes/results/guidance.json')
    ap.add_argument('--runs', default=None, help='folder of the trained runs (default: a temporary one)')
    ap.add_argument('--grids', default=None)
    ap.add_argument('--n', type=int, default=512)
    ap.add_argument('--tiny', action='store_true')
    ap.add_argument('--merge', nargs='*', default=None)
    a = ap.parse_args()
    if a.merge: return merge(a.merge, a.out)
    n = 64 if a.tiny else a.n
    ev = ImageEval.fashion_mnist(device='cuda' if torch.cuda.is_available() else None)
    real, rows = real_subset(ev, n), []
    meta = meta_of(ev, n, a.settings, real)
    print('threads', meta['threads'], 'OMP_NUM_THREADS', os.environ.get('OMP_NUM_THREADS'), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(a.runs or tmp)
        runs.mkdir(parents=True, exist_ok=True)
        secs = {}
        for seed in a.seeds:
            secs[seed] = train(seed, runs, a.tiny)
            print(seed, f'trained in {secs[seed]:.0f} s', flush=True)
        models = {seed: load_run(runs / f'seed{seed}') for seed in a.seeds}
        for name in a.settings:
            for seed in a.seeds:
                row, x = score(seed, name, *models[seed], ev, n, real, secs[seed])
                rows.append(row)
                write(a.out, rows, meta)
                if a.grids is not None and seed == a.seeds[0] and name in GRIDS:
                    save_grid(by_class(x, models[seed][1].n_classes), Path(a.grids) / GRIDS[name], n=80)

if __name__ == '__main__': main()
