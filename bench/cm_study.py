"""The consistency-tuning study: the default run tuned into a consistency model as ECT does, seed by seed, against the
run's own samplers at the same number of network calls and at their best.

    python bench/cm_study.py [--seeds 0 1 2] [--runs runs/cm_study] [--out ROWS.json] [--n 512]
                             [--teachers runs/flow_study] [--tiny]
    python bench/cm_study.py --store ROWS.json [ROWS.json ...]

For each seed the teacher is the default run, `RunConfig(seed=seed)`: taken from TEACHERS/default--v--Min-SNR-5-sSEED
when the flow-matching study left it there (the same configuration and seed, so the same run), else trained into
RUNS/teacher-sSEED. It is tuned with `init_config(teacher, TUNE)`, `callback='consistency'` and the options of `TUNE`,
into RUNS/ect-sSEED. Then, from sampling seed 1000 + seed and the same noise for every draw:

- the consistency run draws with 1, 2 and 4 calls (`cm_grid`: σ_max, then ECT's 0.821 and Karras levels between);
- the teacher draws with DDIM (on the trailing grid, which starts from pure noise: the default's leading one wastes
  few steps) and DPM-Solver++ (2M) at 1, 2 and 4 calls, and with its own sampler, ancestral DDPM in 50 steps, its best.

Every draw of `n` images is scored with `ImageEval.report` (FID at n with its interval, FID∞) and `fidelity_report`
(precision, recall, density, coverage). A run's training time is the sum of its epochs' times; tuning and teacher
are timed the same way, on the same machine. Rows are written after each draw; a draw already in the file is skipped,
so the study resumes where it stopped. `--store` merges such files into `diffnotes/results/cm_study.json`, which the
chapter reads. `--tiny` checks the script in a minute.

    python bench/cm_study.py --cost [--repeats 3]

measures what the runs' wall-clock times cannot, when other runs share the cores: the cost of an epoch of tuning
against an epoch of training, side by side in one process, alternating (an epoch each from seed 0's teacher, `repeats`
times; the ratio of the medians). It writes RUNS/cost.json, which `--store` adds to the study as `epoch_ratio`.
"""
import argparse, contextlib, io, json, statistics, tempfile, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
from diffnotes.config import RunConfig, init_config
from diffnotes.runs import train_run, save_grid
from diffnotes.sampling import load_run, sample_from
from diffnotes.checkpoints import load_checkpoint
from diffnotes.eval import ImageEval
from diffnotes.studies import write_study
from autoguidance_study import trained, score, machine  # the autoguidance study's timing, scoring and meta

TUNE = dict(epochs=4, cm_stage_every=50, lr=3e-4, ema_decay=0.99)  # a sixth of the teacher's 24 epochs
CALLS = (1, 2, 4)
DRAWS = [('consistency', 'consistency', k) for k in CALLS] + [('teacher', s, k) for s in ('ddim', 'dpm') for k in CALLS]
DRAWS += [('teacher', 'ddpm', 50)]

def run_seed(seed, a, ev, rows, out, meta):
    "Every draw of one seed that the rows lack"
    over = dict(epochs=2, channels=(8, 16)) if a.tiny else {}
    runs = Path(a.runs)
    teacher = Path(a.teachers) / f'default--v--Min-SNR-5-s{seed}'
    if a.tiny or not (teacher / 'model.pt').exists(): teacher = runs / f'teacher-s{seed}'
    secs = {'teacher': trained(teacher, RunConfig(seed=seed, **over))}
    tune = {**TUNE, 'epochs': 1} if a.tiny else TUNE
    cfg = init_config(load_checkpoint(teacher)['config'], teacher, dict(callback='consistency', seed=seed, **tune))
    secs['consistency'] = trained(runs / f'ect-s{seed}', cfg)
    nets = {'teacher': load_run(teacher, device='cpu'), 'consistency': load_run(runs / f'ect-s{seed}', device='cpu')}
    have = {(r['model'], r['sampler'], r['calls']) for r in rows if r['seed'] == seed}
    for who, sampler, k in DRAWS:
        if (who, sampler, k) in have: continue
        model, c = nets[who]
        start = time.perf_counter()
        x = sample_from(model, c, a.n, sampler, k, seed=1000 + seed, spacing='trailing' if sampler == 'ddim' else None)
        rows.append({'seed': seed, 'model': who, 'sampler': sampler, 'calls': k,
                     'train_seconds': secs[who], 'teacher_seconds': secs['teacher'],
                     'sample_seconds': round(time.perf_counter() - start, 1), **score(ev, x)})
        print(f"s{seed} {who:>11} {sampler:>11} {k:>2} calls  FID {rows[-1]['fid']:6.2f}  "
              f"precision {rows[-1]['precision']:.3f}  recall {rows[-1]['recall']:.3f}", flush=True)
        out.write_text(json.dumps({**meta, 'rows': rows}, ensure_ascii=False, indent=1) + '\n')

def epoch_ratio(teacher, repeats=3, tune=TUNE):
    "Median seconds of one epoch of tuning over one epoch of training from `teacher`, measured alternately here"
    base, times = load_checkpoint(teacher)['config'], {'train': [], 'tune': []}
    with tempfile.TemporaryDirectory() as d:
        for i in range(repeats):
            for kind, over in (('train', {}), ('tune', dict(callback='consistency', **tune))):
                cfg = init_config(base, teacher, {**over, 'epochs': 1})
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    train_run(cfg, Path(d) / f'{kind}{i}', progress=False, sample=False)
                times[kind].append(time.perf_counter() - start)
    return statistics.median(times['tune']) / statistics.median(times['train']), times

GRIDS = (('consistency', 'consistency', 1), ('consistency', 'consistency', 2), ('teacher', 'dpm', 2),
         ('teacher', 'ddpm', 50))  # the chapter's grids of seed 0

def store(files, dest='diffnotes/results/cm_study.json', runs='runs/cm_study', teachers='runs/flow_study'):
    ("Merge the rows of `files` (later files win) into the chapter's stored study, and draw `GRIDS` from seed 0's "
     "runs: the first 64 images of the study's draws (per-image noise)")
    metas, rows = [json.loads(Path(f).read_text()) for f in files], {}
    for m in metas:
        for r in m['rows']: rows[r['seed'], r['model'], r['sampler'], r['calls']] = r
    order = [d[:2] for d in DRAWS]
    rows = sorted(rows.values(), key=lambda r: (r['seed'], order.index((r['model'], r['sampler'])), r['calls']))
    study = {k: metas[0][k] for k in ('device', 'threads', 'torch', 'platform', 'n', 'tune', 'draws')}
    cost = Path(runs) / 'cost.json'
    if cost.exists(): study['epoch_ratio'] = json.loads(cost.read_text())['epoch_ratio']
    write_study(dest, study, rows)
    print(f'wrote {len(rows)} rows to {dest}')
    teacher = Path(teachers) / 'default--v--Min-SNR-5-s0'
    nets = {'teacher': load_run(teacher if teacher.exists() else Path(runs) / 'teacher-s0', device='cpu'),
            'consistency': load_run(Path(runs) / 'ect-s0', device='cpu')}
    for who, sampler, k in GRIDS:
        x = sample_from(*nets[who], 64, sampler, k, seed=1000, spacing='trailing' if sampler == 'ddim' else None)
        save_grid(x, Path(dest).parent / f'cm_{who}_{sampler}_{k}.png')

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='*', default=[0, 1, 2])
    ap.add_argument('--runs', default='runs/cm_study')
    ap.add_argument('--teachers', default='runs/flow_study')
    ap.add_argument('--out', default=None)
    ap.add_argument('--n', type=int, default=512)
    ap.add_argument('--tiny', action='store_true')
    ap.add_argument('--store', nargs='*', default=None)
    ap.add_argument('--cost', action='store_true')
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    if a.store: return store(a.store, runs=a.runs, teachers=a.teachers)
    if a.cost:
        ratio, times = epoch_ratio(Path(a.teachers) / 'default--v--Min-SNR-5-s0', a.repeats)
        Path(a.runs).mkdir(parents=True, exist_ok=True)
        (Path(a.runs) / 'cost.json').write_text(json.dumps({'epoch_ratio': round(ratio, 3), 'seconds': times}) + '\n')
        return print(f'an epoch of tuning costs {ratio:.2f} epochs of training')
    out = Path(a.out or Path(a.runs) / 'rows.json')
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(out.read_text())['rows'] if out.exists() else []
    meta = {**machine(), 'n': a.n, 'tune': TUNE, 'draws': DRAWS}
    ev = ImageEval.fashion_mnist()
    for seed in a.seeds: run_seed(seed, a, ev, rows, out, meta)

if __name__ == '__main__': main()
