"""The recipe search, the FID-vs-NFE study, the EMA curve and the GPU preset, as one prepared command.

    python bench/search.py OUT [--tiny] [--workers 14] [--deadline 500] [--full PATH]

Every recipe trains the default run's budget (the embedded subset, the default model and batch size,
`EPOCHS` epochs: about 5 minutes on a 2-core CPU), each in its own process, so that a machine with many
cores and one GPU trains many at once. Each trained model is scored with FID at n=512 (real-data floor and
95% interval) for its raw weights and three moving averages, under four samplers of at most 50
model calls (the default run's sampling time). Then:
- stage 2: the four best recipes of stage 1 again with seeds 1 and 2 (stage 1 is seed 0);
- the FID-vs-NFE study on the best recipe's seed-0 model (its 0.999 moving average);
- an FID-over-training curve, raw weights against their moving average, on the default recipe;
- with `--full`, the GPU preset: all 60k training images, a diffusers UNet of at most 16M parameters,
  25 epochs, scored at n=2048 (and n=512, as the CPU table) with DDIM (100 steps), DPM-Solver++ (25) and ancestral (100, 50).
Results go to OUT as JSON lines as they arrive, so a run cut short still returns what it finished.
`--tiny` shrinks everything (one epoch, a small model, n=64) to check the script on a CPU in minutes.
"""
import argparse, json, os, sys, time, warnings
import multiprocessing as mp
from pathlib import Path

EPOCHS = 20  # the default run's epochs; every recipe here keeps its model and batch size, so its time per epoch
EPS = dict(objective='eps', weight='none', bs=128, sampler='ddim')  # the default before the search
RECIPES = {  # name → `RunConfig` fields; on a 2-core CPU the batch size does not change the time per epoch
    'default (eps)': EPS,
    'eps, P2 γ=1': dict(EPS, weight='p2', gamma=1.),
    'eps, Min-SNR-5': dict(EPS, weight='min-snr'),
    'eps, linear': dict(EPS, schedule='linear'),
    'v': dict(EPS, objective='v'),
    'v, P2 γ=1': dict(EPS, objective='v', weight='p2', gamma=1.),
    'v, Min-SNR-5': dict(EPS, objective='v', weight='min-snr'),
    'v, zero terminal SNR (cosine)': dict(EPS, objective='v', zero_snr=True),
    'v, zero terminal SNR (linear)': dict(EPS, objective='v', zero_snr=True, schedule='linear'),
    'eps, bs 64': dict(EPS, bs=64),
    'eps, P2 γ=1, bs 64': dict(EPS, weight='p2', gamma=1., bs=64),
    'v, bs 64': dict(EPS, objective='v', bs=64),
    'v, P2 γ=1, bs 64': dict(EPS, objective='v', weight='p2', gamma=1., bs=64),
    'eps, bs 32': dict(EPS, bs=32, epochs=15),  # 21 s per epoch on the 2-core CPU against 16 s at bs 128 and 64
    'v, Min-SNR-5, bs 32': dict(EPS, objective='v', weight='min-snr', bs=32, epochs=15),
    'v, Min-SNR-5, bs 64': dict(EPS, objective='v', weight='min-snr', bs=64),
    'v, zero terminal SNR (cosine), bs 64': dict(EPS, objective='v', zero_snr=True, bs=64),
    'v, bs 64, lr 1e-3': dict(EPS, objective='v', bs=64, lr=1e-3),
    'v, bs 64, lr 1e-2': dict(EPS, objective='v', bs=64, lr=1e-2),
}
TABLE = dict(weight='none', bs=64, sampler='ddpm')  # the default recipe but for the objective and the weighting: the results table of the weighting zoo
for obj in ('eps', 'v'):
    for w, kw in (('none', {}), ('P2 γ=1', dict(weight='p2', gamma=1.)), ('Min-SNR-5', dict(weight='min-snr')),
                  ('EDM', dict(weight='edm')), ('sigmoid b=-2', dict(weight='sigmoid', sigmoid_b=-2.))):  # b = 0 would be P2 γ=1, k=1
        if not (w == 'EDM' and obj == 'eps'):  # refused: EDM's weight on the ε-MSE is unbounded in the noise
            RECIPES[f'table {obj}, {w}'] = dict(TABLE, objective=obj, **kw)
ALWAYS = ('default (eps)', 'eps, P2 γ=1')  # seeded three times whatever their rank: the P2 page's comparison
EMAS = (0.999, 0.99, 0.9999)  # the run's own moving average (saved in its checkpoint), then two more kept alongside
SAMPLERS = (('ddim', 50), ('ddpm', 50), ('dpm', 25), ('dpm', 50))
NFE = (10, 25, 50, 100)
CURVE_AT = tuple(map(int, os.environ.get('CURVE_AT', '1,2,5,10,15,20').split(',')))  # epochs that end with a point of the FID-over-training curve
RUNS = Path(os.environ.get('SEARCH_RUNS', '/tmp/search_runs'))  # checkpoints stay on the machine; only results go to OUT

def setup():
    warnings.filterwarnings('ignore')
    import torch
    torch.set_num_threads(1)
    return torch

def score(ev, x, n_boot):
    r = ev.report(x.float().cpu(), n_boot)
    return {k: r[k] for k in ('n', 'fid', 'fid_ci95', 'floor', 'kid')}

def train_eval(name, over, seed, out, tiny, curve=False, evals=None):
    "Train one recipe with one seed, then score raw and averaged weights under each sampler (or only the `evals` pairs)"
    torch = setup()
    from diffnotes.config import RunConfig
    from diffnotes.runs import train_run
    from diffnotes.sampling import sample_from
    from diffnotes.studies import FIDCurve
    from diffnotes.config import STUDY_BUDGET  # the 16-32-64 model in fp32: the budget of this search
    from diffnotes.ema import EMA
    from diffnotes.eval import ImageEval
    n = 64 if tiny else 512
    over = {**RECIPES.get(name, {}), **over}  # the recipe's fields in full, whatever the library's defaults are
    cfg = RunConfig(**{**STUDY_BUDGET, 'epochs': EPOCHS, **over, 'seed': seed, 'ema_decay': EMAS[0], **(dict(epochs=1) if tiny else {}),
                       **(dict(channels=(8, 16)) if tiny else {})})
    ev, extra = ImageEval.fashion_mnist(), [] if evals else [EMA(d) for d in EMAS[1:]]
    cbs = []
    folder = RUNS / f"{name.replace(' ', '_').replace(',', '').replace('=', '')}_s{seed}"
    if curve:  # beside the raw weights and the run's average: a slower warm-up, and two constant decays as improved-diffusion keeps
        extra = [EMA(0.9999, power=3/4), EMA(0.999, warmup=False), EMA(0.9999, warmup=False)]
        cbs += [FIDCurve(cfg, ev, CURVE_AT, n, 'ddpm', 50, seed=999, path=Path(out) / 'curve.jsonl')]
    cbs += extra
    t0 = time.time()
    resume = folder if (folder / 'model.pt').exists() else None  # a search cut short goes on where its runs stopped
    learn = train_run(cfg, out=folder, resume=resume, sample=False, progress=False, cbs=cbs)
    secs, res = time.time() - t0, []
    emas = [next(c for c in learn.cbs if isinstance(c, EMA) and c.decay == EMAS[0])] + extra
    for w, e in [('raw', None)] + [(f'ema {d}', c) for d, c in zip(EMAS, emas)]:
        if e is not None: e.swap()
        for s, k in SAMPLERS:
            if evals and (w, f'{s}{k}') not in evals: continue
            t1 = time.time()
            x = sample_from(learn.model, cfg, n, s, k, seed=1000 + seed)
            res.append({'weights': w, 'sampler': f'{s}{k}', 'sample_s': time.time() - t1, **score(ev, x, 100)})
        if e is not None: e.swap()
    return {'kind': 'recipe', 'recipe': name, 'overrides': over, 'seed': seed, 'train_s': secs, 'device': str(learn.dls.device),
            'folder': str(folder), 'resumed': resume is not None, 'scores': res, 'curve': next((c.rows for c in cbs if isinstance(c, FIDCurve)), [])}

def nfe_study(folder, out, tiny, put=None, n_boot=200):
    "FID against the number of model calls for every sampler of `NFE_SAMPLERS` on one trained model (its moving average); rows go to `put` as they come"
    torch = setup()
    from diffnotes.sampling import load_run
    from diffnotes.runs import save_grid
    from diffnotes.studies import fid_vs_nfe
    from diffnotes.eval import ImageEval
    model, cfg = load_run(folder)
    model, ev, rows = model.to('cuda' if torch.cuda.is_available() else 'cpu'), ImageEval.fashion_mnist(), []
    slugs = {'ancestral DDPM': 'ddpm', 'DDIM η=0': 'ddim', 'DDIM η=1': 'ddim_eta1', 'DPM-Solver++(2M)': 'dpm', 'Euler': 'euler', 'Heun': 'heun'}
    for k in NFE:
        grids = {}
        new = fid_vs_nfe(model, cfg, ev, (k,), 64 if tiny else 512, n_boot, grids=grids)
        for (name, k), x in grids.items():
            if k in (10, 25): save_grid(x, Path(out) / f"nfe_{slugs[name]}_{k}.png")
        rows += new
        if put: put({'kind': 'nfe_rows', 'rows': new})
    return {'kind': 'nfe', 'folder': str(folder), 'config': {k: str(v) for k, v in cfg.__dict__.items()}, 'rows': rows}

def gpu_preset(data, out, tiny):
    "The full training set, a diffusers UNet, 25 epochs; FID at n=2048 (and of its first 512) for DDIM 100, DPM-Solver++ 25 and ancestral 100 and 50"
    torch = setup()
    from diffnotes.config import RunConfig
    from diffnotes.runs import train_run, save_grid
    from diffnotes.sampling import sample_from
    from diffnotes.learner import build_model
    from diffnotes.eval import ImageEval
    cfg = RunConfig(data='embedded' if tiny else data, model='unet', channels=(8, 16) if tiny else (64, 128, 256), objective='v', weight='min-snr',
                    epochs=1 if tiny else 25, bs=256, lr=5e-4, ema_decay=0.999, n_samples=8)
    params = sum(p.numel() for p in build_model(cfg).parameters())
    t0 = time.time()
    learn = train_run(cfg, out=RUNS / 'gpu_preset', sample=False, progress=False)
    secs, ev, n, res = time.time() - t0, ImageEval.fashion_mnist(), 128 if tiny else 2048, []
    ema = next(c for c in learn.cbs if type(c).__name__ == 'EMA'); ema.swap()
    for s, k in (('ddim', 100), ('dpm', 25), ('ddpm', 100), ('ddpm', 50)):
        t1 = time.time()
        x = sample_from(learn.model, cfg, n, s, k, seed=5, bs=512)
        secs_s = time.time() - t1
        save_grid(x, Path(out) / f"preset_{s}{k}.png")
        res.append({'sampler': f'{s}{k}', 'sample_s': secs_s, **score(ev, x, 200), 'at_512': score(ev, x[:512], 200)})  # n=512 as the CPU table scores
        print(f"preset {s}{k}: FID {res[-1]['fid']:.2f} (n={n}), {res[-1]['at_512']['fid']:.2f} (n=512)", flush=True)
    return {'kind': 'gpu_preset', 'config': {k: str(v) for k, v in cfg.__dict__.items()}, 'params': params, 'train_s': secs,
            'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu', 'scores': res}

CPU_EVALS = (('raw', 'ddim50'), ('raw', 'ddpm50'), ('ema 0.999', 'ddpm50'), ('ema 0.999', 'dpm25'))  # sampling costs minutes on a CPU

EVAL_SETS = {'cpu': CPU_EVALS, 'ddim': (('raw', 'ddim50'),), 'table': (('ema 0.999', 'ddpm50'),)}  # 'ddim': the default sampler of the tutorials' comparisons

def cpu_plan(a, put):
    "Run the listed 'recipe:seed[:evals]' jobs two at a time (a 2-core CPU), with a smaller set of scores"
    jobs = [(j.split(':') + ['cpu'])[:3] for j in a.jobs]
    with mp.get_context('spawn').Pool(a.workers, maxtasksperchild=1) as pool:
        rs = [pool.apply_async(train_eval, (n, RECIPES[n], int(s), a.out, a.tiny, False, EVAL_SETS[e])) for n, s, e in jobs]
        for r in rs:
            try: put(r.get())
            except Exception as e: put({'kind': 'error', 'error': repr(e)})

def study(a, put):
    "The EMA curve and the FID-vs-NFE study of one recipe, in this process"
    r = train_eval(a.study, RECIPES[a.study], 0, a.out, a.tiny, True, CPU_EVALS)
    put(r); put(nfe_study(r['folder'], a.out, a.tiny, put, 100))

def collect(folders, dest):
    "The recipe rows of `folders`' results.jsonl files, without their run folders and curves, as one JSON list in `dest`"
    keep = ('recipe', 'overrides', 'seed', 'train_s')
    rows = [{**{k: r[k] for k in keep}, 'scores': [{k: s[k] for k in ('weights', 'sampler', 'n', 'fid', 'fid_ci95', 'floor')} for s in r['scores']]}
            for f in folders for r in map(json.loads, open(Path(f) / 'results.jsonl')) if r['kind'] == 'recipe']
    rows.sort(key=lambda r: (list(RECIPES).index(r['recipe']) if r['recipe'] in RECIPES else 99, r['seed']))
    Path(dest).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + '\n')
    print(f"{len(rows)} rows → {dest}")

def collect_table(folders, dest):
    "The 'table …' rows of `folders`' results.jsonl files as the weighting zoo stores them (`diffnotes/results/weighting_table.json`)"
    rows = {}
    for f in folders:
        for r in map(json.loads, open(Path(f) / 'results.jsonl')):
            if r['kind'] != 'recipe' or not r['recipe'].startswith('table '): continue
            obj, w = r['recipe'][len('table '):].split(', ', 1)
            s = next(s for s in r['scores'] if (s['weights'], s['sampler']) == ('ema 0.999', 'ddpm50'))
            rows[obj, w, r['seed']] = {'objective': obj, 'weighting': w, 'seed': r['seed'], **{k: s[k] for k in ('n', 'fid', 'fid_ci95', 'floor')}}
    out = sorted(rows.values(), key=lambda r: (list(RECIPES).index(f"table {r['objective']}, {r['weighting']}"), r['seed']))  # the order of `RECIPES`
    Path(dest).write_text(json.dumps(out, indent=1, ensure_ascii=False) + '\n')
    print(f"{len(out)} rows → {dest}")

def best_fid(r): return min(s['fid'] for s in r['scores'])

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out'); p.add_argument('--tiny', action='store_true'); p.add_argument('--workers', type=int, default=16)
    p.add_argument('--deadline', type=float, default=500, help='seconds after which no new job starts')
    p.add_argument('--full', default=None, help='folder of the full Fashion-MNIST idx files: run the GPU preset too')
    p.add_argument('--recipes', type=int, default=len(RECIPES), help='how many recipes of stage 1 (from the top)')
    p.add_argument('--study', default=None, help='one recipe (seed 0): train it with the FID-over-training curve, then the FID-vs-NFE study')
    p.add_argument('--curve', default=None, help='one recipe (seed 0), trained with the FID-over-training curve')
    p.add_argument('--nfe', default=None, help='a trained run folder: only the FID-vs-NFE study of its moving average')
    p.add_argument('--jobs', nargs='*', default=None, help="CPU plan: only these 'recipe:seed' jobs, two at a time, scored with `CPU_EVALS`")
    p.add_argument('--collect', nargs='*', default=None, help='result folders to merge into OUT, a JSON file of the recipe rows')
    p.add_argument('--collect-table', nargs='*', default=None, help="result folders whose 'table …' rows go to OUT, as the weighting zoo stores them")
    a = p.parse_args()
    if a.collect is not None: return collect(a.collect, a.out)
    if a.collect_table is not None: return collect_table(a.collect_table, a.out)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    log, t0 = open(out / 'results.jsonl', 'a'), time.time()
    def put(r): log.write(json.dumps(r) + '\n'); log.flush(); print(f"[{time.time() - t0:.0f}s] {r['kind']} {r.get('recipe', '')} {r.get('seed', '')}", flush=True)
    if a.jobs is not None: return cpu_plan(a, put)
    if a.study: return study(a, put)
    if a.nfe: return put(nfe_study(a.nfe, a.out, a.tiny, put, 100))
    if a.curve: return put(train_eval(a.curve, RECIPES[a.curve], 0, a.out, a.tiny, True, (('ema 0.999', 'ddpm50'),)))
    ctx = mp.get_context('spawn')
    with ctx.Pool(a.workers, maxtasksperchild=1) as pool:
        pending = []
        def submit(f, *args): pending.append(pool.apply_async(f, args))
        if a.full: submit(gpu_preset, a.full, str(out), a.tiny)
        for i, (name, over) in enumerate(list(RECIPES.items())[:a.recipes]):
            submit(train_eval, name, over, 0, str(out), a.tiny, i == 0)
        stage1, stage2_started, done = [], False, set()
        while pending:
            time.sleep(2)
            for j in [j for j in pending if j.ready()]:
                pending.remove(j)
                try: r = j.get()
                except Exception as e: put({'kind': 'error', 'error': repr(e)}); continue
                put(r)
                if r['kind'] == 'recipe' and r['seed'] == 0: stage1.append(r)
            if not stage2_started and len(stage1) == min(a.recipes, len(RECIPES)):
                stage2_started = True
                top = sorted(stage1, key=best_fid)
                if top and time.time() - t0 < a.deadline:  # `--recipes 0`: the GPU preset alone
                    submit(nfe_study, top[0]['folder'], str(out), a.tiny)
                    for r in top[:4] + [r for r in stage1 if r['recipe'] in ALWAYS and r not in top[:4]]:
                        for seed in (1, 2): submit(train_eval, r['recipe'], r['overrides'], seed, str(out), a.tiny)
    print(f"done in {time.time() - t0:.0f}s", flush=True)

if __name__ == '__main__': main()
