"""The autoguidance study: the default unconditional run guided by a weaker version of itself, seed by seed.

    python bench/autoguidance_study.py [--seeds 0 1 2] [--runs runs/autoguidance] [--out ROWS.json] [--n 512]
                                       [--main-runs runs/flow_study] [--tiny]
    python bench/autoguidance_study.py --store ROWS.json [ROWS.json ...]
    python bench/autoguidance_study.py --cond [--seeds 0 1 2] [--out ROWS.json] [--n 512] [--tiny]
    python bench/autoguidance_study.py --cond --store ROWS.json [ROWS.json ...]

For each seed the main model is the default run, `RunConfig(seed=seed)`: taken from
MAIN_RUNS/default--v--Min-SNR-5-sSEED
when the flow-matching study left it there (the same configuration and seed, so the same run), else trained into
RUNS/main-sSEED. Its guides (Karras et al. 2024, arXiv 2406.02507) are

- 'raw': the main run's own last weights instead of their moving average (the shortest average; no extra training);
- 'small': a run of the same recipe and seed with a third of the channels, `channels=(8, 16, 32)`;
- 'short': a run of the same recipe and seed trained for a quarter of the epochs, `epochs=6`.

Each guide that needs training is trained once; a run's training time is the sum of its epochs' times. Every setting
draws `n` images with the run's own sampler (ancestral DDPM, 50 steps) from sampling seed 1000 + seed, the same noise
for every setting, and is scored with `ImageEval.report` (FID at n with its interval, FID∞) and `fidelity_report`
(precision, recall, density, coverage). Rows are written after each setting; a setting already in the file is skipped,
so the study resumes where it stopped.
`--store` merges such files into `diffnotes/results/autoguidance.json`, which the chapter reads. `--tiny` checks the
script in a minute.

`--cond` runs the conditional half: the main model is the class-conditional default run, `RunConfig(cond=True,
seed=seed)`, trained into RUNS/cond-main-sSEED, and its guide the same recipe trained for 6 epochs
(RUNS/cond-short-sSEED, the best guide of the unconditional half). Each setting of `COND_SETTINGS` draws `n`
class-balanced images (image i of class i mod 10) with ancestral DDPM in 50 steps, from the same noise: classifier-free
guidance (the null class as the weak side) at w = 1.5, its best on this run in the guidance chapter; autoguidance (the
guide, given the labels) at w = 1.5, the short guide's best above; and both, w = 2 with `guide_mix` 0.5, each half at
the strength it has alone (w − 1 = 0.5). Rows add the evaluation classifier's accuracy on the asked classes
(`ImageEval.accuracy`); `--cond --store` writes `diffnotes/results/autoguidance_cond.json`.
"""
import argparse, contextlib, io, json, platform, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import torch
from diffnotes.config import RunConfig
from diffnotes.runs import train_run, save_grid
from diffnotes.sampling import load_run, load_guide, sample_from
from diffnotes.checkpoints import load_checkpoint
from diffnotes.eval import ImageEval
from diffnotes.fidelity import fidelity_report
from diffnotes.studies import short, write_study

COND_SETTINGS = [('none', 1., None), ('cfg', 1.5, None), ('ag', 1.5, 1.), ('both', 2., 0.5)]  # (kind, w, AG's share)
GUIDES = {'raw': None, 'small': dict(channels=(8, 16, 32)), 'short': dict(epochs=6)}
WEIGHTS = (1.5, 2.5)
KEEP = ('n', 'fid', 'fid_ci95', 'fid_sd', 'floor', 'fid_inf', 'fid_inf_ci95', 'floor_inf')

def machine():
    "Where the study runs: the GPU's name or 'CPU', the threads, torch's version and the platform"
    return {'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU',
            'threads': torch.get_num_threads(), 'torch': torch.__version__, 'platform': platform.machine()}

def epoch_seconds(d):
    "The training time of the run in `d`: the sum of its epochs' times in `history.csv` (m:ss)"
    times = [line.split(',')[-1] for line in (Path(d) / 'history.csv').read_text().split()[1:]]
    return float(sum(int(m) * 60 + int(s) for m, s in (t.split(':') for t in times)))

def trained(d, cfg):
    "Train (or finish) the run of `cfg` in `d`; its training time, `epoch_seconds`"
    done = load_checkpoint(d)['epochs_done'] if (d / 'model.pt').exists() else 0
    if done < cfg.epochs:
        with contextlib.redirect_stdout(io.StringIO()):
            train_run(cfg, d, resume=d if done else None, progress=False, sample=False)
    return epoch_seconds(d)

def score(ev, x):
    "FID report and fidelity of images `x`, as plain numbers"
    rep, fid = ev.report(x), fidelity_report(ev, x)
    return {**{k: short(rep[k]) for k in KEEP},
            **{k: short(fid[k]) for k in ('precision', 'recall', 'density', 'coverage')}}

def run_seed(seed, a, ev, rows, out, meta):
    "Every setting of one seed that the rows lack"
    over = dict(epochs=2, channels=(8, 16)) if a.tiny else {}
    runs = Path(a.runs)
    main_dir = Path(a.main_runs) / f'default--v--Min-SNR-5-s{seed}'
    if a.tiny or not (main_dir / 'model.pt').exists(): main_dir = runs / f'main-s{seed}'
    secs = {'main': trained(main_dir, RunConfig(seed=seed, **over))}
    main, cfg = load_run(main_dir, device='cpu')
    have = {(r['guide'], r['guidance']) for r in rows if r['seed'] == seed}
    settings = [(None, 1.)] + [(g, w) for g in GUIDES for w in WEIGHTS]
    for g, w in settings:
        if (g, w) in have: continue
        guide = None
        if g == 'raw': guide = load_guide(main_dir, cfg, raw=True, device='cpu')
        elif g is not None:
            gd = runs / f'{g}-s{seed}'
            gover = {**over, **GUIDES[g]} if not a.tiny else {**over, 'epochs': 1}
            secs[g] = trained(gd, RunConfig(seed=seed, **gover))
            guide = load_guide(gd, cfg, device='cpu')
        start = time.perf_counter()
        x = sample_from(main, cfg, a.n, seed=1000 + seed, guidance=w, guide=guide)
        rows.append({'seed': seed, 'guide': g, 'guide_train_seconds': secs.get(g, 0.) if g else 0.,
                     'main_train_seconds': secs['main'], 'guidance': w,
                     'sample_seconds': round(time.perf_counter() - start, 1), **score(ev, x)})
        print(f"s{seed} guide {str(g):>5} w {w:<4} FID {rows[-1]['fid']:6.2f}  precision {rows[-1]['precision']:.3f}  "
              f"recall {rows[-1]['recall']:.3f}", flush=True)
        out.write_text(json.dumps({**meta, 'rows': rows}, ensure_ascii=False, indent=1) + '\n')

def cond_seed(seed, a, ev, rows, out, meta):
    "Every conditional setting of one seed that the rows lack"
    over = dict(epochs=2, channels=(8, 16)) if a.tiny else {}
    runs = Path(a.runs)
    secs = {'main': trained(runs / f'cond-main-s{seed}', RunConfig(cond=True, seed=seed, **over)),
            'guide': trained(runs / f'cond-short-s{seed}',
                             RunConfig(cond=True, seed=seed, **{**over, 'epochs': 1 if a.tiny else 6}))}
    main, cfg = load_run(runs / f'cond-main-s{seed}', device='cpu')
    guide = load_guide(runs / f'cond-short-s{seed}', cfg, device='cpu')
    have = {(r['kind'], r['guidance']) for r in rows if r['seed'] == seed}
    ys = torch.arange(a.n) % cfg.n_classes
    for kind, w, mix in COND_SETTINGS:
        if (kind, w) in have: continue
        start = time.perf_counter()
        x = sample_from(main, cfg, a.n, seed=1000 + seed, guidance=w, guide=guide if mix else None,
                        guide_mix=mix or 1.)
        acc = ev.accuracy(x, ys)
        rows.append({'seed': seed, 'kind': kind, 'guidance': w, 'guide_mix': mix, 'main_train_seconds': secs['main'],
                     'guide_train_seconds': secs['guide'] if mix else 0., 'acc': short(acc['acc']),
                     'real_acc': short(acc['real_acc']),
                     'sample_seconds': round(time.perf_counter() - start, 1), **score(ev, x)})
        print(f"s{seed} {kind:>4} w {w:<4} FID {rows[-1]['fid']:6.2f}  accuracy {rows[-1]['acc']:.3f}  "
              f"precision {rows[-1]['precision']:.3f}  recall {rows[-1]['recall']:.3f}", flush=True)
        meta = {**meta, 'settings': COND_SETTINGS}
        out.write_text(json.dumps({**meta, 'rows': rows}, ensure_ascii=False, indent=1) + '\n')

def store_cond(files, runs, dest='diffnotes/results/autoguidance_cond.json'):
    ("Merge the conditional rows of `files` (later files win) into the chapter's stored study, and draw seed 0's grids "
     "at each kind's best weight: 8 images of each class, the first 80 of the study's draw (per-image noise)")
    metas, rows = [json.loads(Path(f).read_text()) for f in files], {}
    for m in metas:
        for r in m['rows']: rows[r['seed'], r['kind'], r['guidance']] = r
    order = [(k, w) for k, w, _ in COND_SETTINGS]
    rows = sorted(rows.values(), key=lambda r: (r['seed'], order.index((r['kind'], r['guidance']))))
    real = ImageEval.fashion_mnist().accuracy(torch.zeros(2, 1, 32, 32), [0, 0])['real_acc']  # on the real test images
    rows = [{**r, 'real_acc': r.get('real_acc', short(real))} for r in rows]
    study = {k: metas[0][k] for k in ('device', 'threads', 'torch', 'platform', 'n', 'settings', 'sampler')}
    write_study(dest, study, rows)
    print(f'wrote {len(rows)} rows to {dest}')
    main, cfg = load_run(Path(runs) / 'cond-main-s0', device='cpu')
    guide = load_guide(Path(runs) / 'cond-short-s0', cfg, device='cpu')
    for kind, w, mix in COND_SETTINGS:
        x = sample_from(main, cfg, 80, seed=1000, guidance=w, guide=guide if mix else None, guide_mix=mix or 1.)
        save_grid(torch.cat([x[c::10][:8] for c in range(10)]), Path(dest).parent / f'autoguidance_cond_{kind}.png',
                  n=80)

def store(files, dest='diffnotes/results/autoguidance.json'):
    "Merge the rows of `files` (later files win) into the chapter's stored study"
    metas, rows = [json.loads(Path(f).read_text()) for f in files], {}
    for m in metas:
        for r in m['rows']: rows[r['seed'], r['guide'], r['guidance']] = r
    order = [None] + list(GUIDES)
    rows = sorted(rows.values(), key=lambda r: (r['seed'], order.index(r['guide']), r['guidance']))
    study = {k: metas[0][k] for k in ('device', 'threads', 'torch', 'platform', 'n', 'guides', 'weights', 'sampler')}
    write_study(dest, study, rows)
    print(f'wrote {len(rows)} rows to {dest}')

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--runs', default='runs/autoguidance')
    ap.add_argument('--main-runs', default='runs/flow_study')
    ap.add_argument('--out', default=None)
    ap.add_argument('--n', type=int, default=512)
    ap.add_argument('--tiny', action='store_true')
    ap.add_argument('--store', nargs='*', default=None)
    ap.add_argument('--cond', action='store_true')
    a = ap.parse_args()
    if a.store: return store_cond(a.store, a.runs) if a.cond else store(a.store)
    out = Path(a.out or Path(a.runs) / 'rows.json')
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(out.read_text())['rows'] if out.exists() else []
    meta = {**machine(), 'n': a.n, 'guides': GUIDES, 'weights': list(WEIGHTS), 'sampler': ['ddpm', 50]}
    ev = ImageEval.fashion_mnist()
    for seed in a.seeds: (cond_seed if a.cond else run_seed)(seed, a, ev, rows, out, meta)

if __name__ == '__main__': main()
