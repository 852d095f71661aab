"""The default run searched again at today's wall-clock budget: precision, epochs, width, learning rate, EDM, EMA length.

    python bench/budget_search.py [--out diffnotes/results/budget_search.json] [--tiny]

Every recipe is a set of `RunConfig` fields on top of the default run (the embedded subset, 64 images
a batch), trained with post-hoc EMA snapshots on (they do not change the training) and timed, one run
after another in this process, so that the times compare side by side. The epochs of each recipe are
chosen so that its training takes about as long as the fp32 default's 20 epochs on this machine (bf16
through AMX is about 1.6-1.8 times as fast per image, `bench/train_profile.py`); the stored times say
how close each came. Each model is scored with FID at n=512 (floor and 95% interval) with
its run's own sampler and 50 model calls, from sampling seed 1000 + seed, for the run's own moving
average and post-hoc averages of two lengths. Stage 1 is seed 0 for every recipe; stage 2 trains the
`--top` best recipes of stage 1 (by their best average; 2 by default) with seeds 1 and 2. The rows are written after
every run, so a search cut short keeps what it finished, and `--resume` goes on from them. `--speeds --resume`
measures every recipe's images per second side by side (training steps interleaved, median of 3) and the time
its epochs take at that speed, as a ratio to the fp32 default's (contiguous, as it ran before this search). `--tiny` checks
the script in a minute.
"""
import argparse, contextlib, io, json, tempfile, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
from diffnotes.config import RunConfig
from diffnotes.runs import train_run
from diffnotes.sampling import load_run, sample_from
from diffnotes.eval import ImageEval

OLD = dict(channels=(16, 32, 64))  # the default model before this search
RECIPES = {  # name → `RunConfig` fields, every one that the search varied written out
    'fp32, 20 epochs': dict(OLD, precision='fp32', epochs=20),  # the default before this search: the time budget
    'bf16, 34 epochs': dict(OLD, precision='bf16', epochs=34),
    'bf16, 34 epochs, lr 5e-3': dict(OLD, precision='bf16', epochs=34, lr=5e-3),
    'bf16, width 24, 24 epochs': dict(precision='bf16', epochs=24, channels=(24, 48, 96)),
    'bf16, EDM, 34 epochs': dict(OLD, precision='bf16', epochs=34, callback='edm'),
    'bf16, width 32, 15 epochs': dict(precision='bf16', epochs=15, channels=(32, 64, 128)),  # 0.77× the fp32 default's speed
}
AVERAGES = {"ema 0.999 (the run's own)": {}, 'σ_rel 0.05': dict(ema_length=0.05), 'σ_rel 0.10': dict(ema_length=0.10)}

def run_one(name, seed, ev, n, tiny):
    "Train recipe `name` with `seed`, timed, and score each average"
    over = dict(RECIPES[name], **(dict(epochs=1, channels=(8, 16)) if tiny else {}))
    cfg = RunConfig(seed=seed, phema=True, **over)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            train_run(cfg, d, progress=False, sample=False)
            secs = time.perf_counter() - start
        for avg, kw in AVERAGES.items():
            model, rc = load_run(d, device='cpu', **kw)
            r = ev.report(sample_from(model, rc, n, seed=1000 + seed), 200)
            rows.append({'recipe': name, 'fields': {k: list(v) if isinstance(v, tuple) else v for k, v in over.items()},
                         'seed': seed, 'average': avg, 'train_seconds': round(secs, 1), 'sampler': rc.sampler,
                         'sample_steps': rc.sample_steps, **{k: r[k] for k in ('n', 'fid', 'fid_ci95', 'floor', 'kid')}})
    print(name, seed, f'{secs:.0f} s', ' '.join(f"{r['fid']:.2f}" for r in rows), flush=True)
    return rows

def speeds(steps=20, repeats=3):
    "Images per second of every recipe's training step, interleaved and repeated in this process, and its budget's time"
    import statistics, sys, torch
    sys.path.insert(0, str(Path(__file__).parent))
    from train_profile import train_steps
    from diffnotes.learner import build_learner
    learners = {}
    for name, over in RECIPES.items():
        torch.manual_seed(0)
        with contextlib.redirect_stdout(io.StringIO()): learners[name] = build_learner(RunConfig(**over), progress=False)
        learners[name].remove_cbs([c for c in learners[name].cbs if type(c).__name__ == 'EpochLine'])
    learners['fp32, 20 epochs'].model = learners['fp32, 20 epochs'].model.to(memory_format=torch.contiguous_format)  # as it ran
    times = {k: [] for k in learners}
    for l in learners.values(): train_steps(l, 3)
    for _ in range(repeats):
        for k, l in learners.items(): times[k].append(train_steps(l, steps))
    out = {}
    for k, l in learners.items():
        ips = steps * l.dls.train.bs / statistics.median(times[k])
        out[k] = {'images_per_s': ips, 'budget_s': RECIPES[k]['epochs'] * len(l.dls.train) * l.dls.train.bs / ips}
    for v in out.values(): v['budget_ratio'] = v['budget_s'] / out['fp32, 20 epochs']['budget_s']
    return out

def best(rows, name):
    return min(r['fid'] for r in rows if r['recipe'] == name)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='diffnotes/results/budget_search.json')
    p.add_argument('--tiny', action='store_true')
    p.add_argument('--resume', action='store_true', help="keep the rows already in OUT and train only what is missing")
    p.add_argument('--top', type=int, default=2, help="recipes of stage 1 trained again with seeds 1 and 2")
    p.add_argument('--speeds', action='store_true', help="only measure every recipe's speed, side by side, into OUT")
    a = p.parse_args()
    import torch
    ev, n, rows = ImageEval.fashion_mnist(), 64 if a.tiny else 512, []
    out = Path(a.out)
    if a.resume and out.exists(): rows = json.loads(out.read_text())['rows']
    done = lambda name, seed: any(r['recipe'] == name and r['seed'] == seed for r in rows)
    speed = json.loads(out.read_text()).get('speeds') if a.resume and out.exists() else None
    save = lambda: out.write_text(json.dumps({'threads': torch.get_num_threads(), 'torch': torch.__version__,
                                              'recipes': {k: {f: list(v) if isinstance(v, tuple) else v for f, v in r.items()}
                                                          for k, r in RECIPES.items()},
                                              'speeds': speed, 'rows': rows}, indent=1) + '\n')
    if a.speeds:
        speed = speeds(2 if a.tiny else 20, 1 if a.tiny else 3)
        save()
        raise SystemExit
    for name in RECIPES:
        if not done(name, 0):
            rows += run_one(name, 0, ev, n, a.tiny)
            save()
    top = sorted((k for k in RECIPES if k != 'fp32, 20 epochs'), key=lambda k: best(rows, k))[:a.top]
    for seed in (1, 2):
        for name in top:
            if not done(name, seed):
                rows += run_one(name, seed, ev, n, a.tiny)
                save()
