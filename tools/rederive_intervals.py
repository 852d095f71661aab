"""Drop the percentile-bootstrap intervals from the stored results, once (release 0.x → next; see CHANGELOG).

Those intervals resampled with replacement and sat above their estimates (see the eval chapter). The samples they were
computed from are gone, so the per-set intervals cannot be computed again; the chapters now show the interval over
training seeds (`studies.seed_ci`), computed from the stored FIDs. The one row whose images can be drawn again, the
real-image row of `cosine_results.json`, gets the interval of `ImageEval.report`."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / 'diffnotes' / 'results'

def drop(rows):
    "Remove `fid_ci95` from each row; returns how many were removed"
    return sum(r.pop('fid_ci95', None) is not None for r in rows)

def cosine_real_row(row):
    "The cosine chapter's real-image row scored again (same 512 images): its interval from `report`"
    import torch
    from diffnotes.eval import ImageEval
    from diffnotes.data import load_embedded, to_model_scale
    real = load_embedded()['x_train']
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(1))[:512].sort().values
    r = ImageEval.fashion_mnist().report(to_model_scale(real[pick.numpy()]))
    assert abs(r['fid'] - row['fid']) < 1e-9, (r['fid'], row['fid'])  # the same images, the same FID
    row['fid_ci95'] = list(r['fid_ci95'])

def write(p, d, old):
    "Write `d` as `old` was written: raw or escaped non-ASCII, with or without a final newline"
    p.write_text(json.dumps(d, indent=1, ensure_ascii=old.isascii()) + ('\n' if old.endswith('\n') else ''))

def main():
    files = {'budget_search.json': lambda d: drop(d['rows']), 'p2_results.json': drop, 'weighting_table.json': drop,
             'phema_study.json': lambda d: drop(d['rows']), 'sigma_study.json': lambda d: drop(d['rows']),
             'cosine_results.json': drop}
    for name, f in files.items():
        p = RES / name
        old = p.read_text()
        d = json.loads(old)
        print(name, f(d), 'intervals dropped')
        if name == 'cosine_results.json': cosine_real_row(next(r for r in d if r['seed'] is None))
        write(p, d, old)
    p = ROOT / 'nbs' / 'figures' / 'recipe_search.json'
    old = p.read_text()
    d = json.loads(old)
    print(p.name, sum(drop(r['scores']) for r in d), 'intervals dropped')
    write(p, d, old)

if __name__ == '__main__': sys.exit(main())
