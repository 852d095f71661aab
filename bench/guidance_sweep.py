"""The guidance sweep of the guidance chapter: a class-conditional default run per seed, scored at every setting of
`GUIDANCE_SWEEP` (FID and the classifier's accuracy, each with n and an interval).

    python bench/guidance_sweep.py --seeds 0 1 2 [--out diffnotes/results/guidance.json] [--grids FOLDER] [--tiny]
    python bench/guidance_sweep.py --merge part0.json part1.json part2.json --out diffnotes/results/guidance.json

Each seed trains `RunConfig(cond=True, seed=seed)` (the default budget: the embedded subset, 24 epochs) and calls
`guidance_sweep` on the moving average of its weights, with 512 class-balanced samples per setting from sampling seed
1000 + seed, the same noise for every setting. Seeds can run as separate processes (on one GPU, say), each writing
its own file, and `--merge` joins them. `--grids` writes, for the first seed, one grid per setting of `GRIDS`, a
row per class. The file records the device and the torch version. `--tiny` checks the script in a minute.
"""
import argparse, contextlib, io, json, platform, tempfile, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import torch
from diffnotes.config import RunConfig
from diffnotes.runs import train_run, save_grid
from diffnotes.sampling import load_run
from diffnotes.studies import guidance_sweep, GUIDANCE_SWEEP
from diffnotes.eval import ImageEval

GRIDS = {'w=0': 'guidance_w0.png', 'w=1': 'guidance_w1.png', 'w=3': 'guidance_w3.png',
         'w=3, σ∈(0.3, 3]': 'guidance_w3_interval.png'}

def device_name():
    return torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or platform.machine()

def by_class(x, n_classes, per_row=8):
    "The first `per_row` images of each class of a class-balanced draw (image i of class i mod C), a row per class"
    return torch.cat([x[c::n_classes][:per_row] for c in range(n_classes)])

def run_seed(seed, ev, n, tiny, grids=None):
    "Train the conditional default run with `seed` and sweep it"
    over = dict(epochs=1, channels=(8, 16)) if tiny else {}
    with tempfile.TemporaryDirectory() as d:
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            train_run(RunConfig(cond=True, seed=seed, **over), d, progress=False, sample=False)
            secs = time.perf_counter() - start
        model, cfg = load_run(d)
        xs = {}
        rows = guidance_sweep(model, cfg, ev, n=n, seed=1000 + seed, grids=xs)
    if grids is not None:
        for name, f in GRIDS.items(): save_grid(by_class(xs[name], cfg.n_classes), Path(grids) / f, n=80)
    for r in rows: print(seed, f"{r['setting']:>16}  FID {r['fid']:6.2f}  acc {r['acc']:.3f}", flush=True)
    return [dict(r, seed=seed, train_seconds=round(secs, 1)) for r in rows]

def write(out, rows):
    meta = {'device': device_name(), 'torch': torch.__version__, 'recipe': 'RunConfig(cond=True, seed=seed)',
            'settings': {k: [w, iv] for k, (w, iv) in GUIDANCE_SWEEP.items()}}
    Path(out).write_text(json.dumps({**meta, 'rows': rows}, ensure_ascii=False, indent=1) + '\n')

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--out', default='diffnotes/results/guidance.json')
    ap.add_argument('--grids', default=None)
    ap.add_argument('--n', type=int, default=512)
    ap.add_argument('--tiny', action='store_true')
    ap.add_argument('--merge', nargs='*', default=None)
    a = ap.parse_args()
    if a.merge:
        rows = [r for f in a.merge for r in json.loads(Path(f).read_text())['rows']]
        return write(a.out, sorted(rows, key=lambda r: r['seed']))
    ev, rows = ImageEval.fashion_mnist(device='cuda' if torch.cuda.is_available() else None), []
    for i, seed in enumerate(a.seeds):
        rows += run_seed(seed, ev, 64 if a.tiny else a.n, a.tiny, a.grids if i == 0 else None)
        write(a.out, rows)

if __name__ == '__main__': main()
