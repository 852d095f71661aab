"Every interval stored with the results contains its estimate (a percentile bootstrap's often did not)"
import json
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
STORED = sorted([*(ROOT / 'diffnotes' / 'results').glob('*.json'), *(ROOT / 'nbs' / 'figures').glob('*.json')])

def intervals(d, where=''):
    "Yield (where, estimate, (lo, hi)) for every `name_ci95` beside its `name`, and every `ci` beside `mean` or `fid`"
    if isinstance(d, list):
        for i, v in enumerate(d): yield from intervals(v, f'{where}[{i}]')
    if not isinstance(d, dict): return
    for k, v in d.items():
        if (k.endswith('_ci95') or k.endswith('_ci') or k == 'ci') and v is not None:  # None: no interval (one run)
            est = k.rsplit('_ci', 1)[0] if k != 'ci' else next((e for e in ('mean', 'fid') if e in d), None)
            assert est in d, f"{where}.{k}: an interval without its estimate"
            yield f'{where}.{k}', d[est], v
        else: yield from intervals(v, f'{where}.{k}')

def test_the_scan_finds_intervals():
    found = {p.name: len(list(intervals(json.loads(p.read_text())))) for p in STORED}
    assert found['default_run.json'] >= 1 and found['cosine_results.json'] >= 1, found
    assert found['memorisation_runs.json'] >= 4, found
    bad = {'fid': 0.5, 'fid_ci95': [0.66, 1.3]}  # the guidance sweep's w = 1.5 before intervals were derived again
    assert list(intervals(bad)) == [('.fid_ci95', 0.5, [0.66, 1.3])]
    assert list(intervals({'mean': 2., 'ci': None, 'fid_inf': 1., 'fid_inf_ci': [0.5, 1.5]})) == [('.fid_inf_ci', 1., [0.5, 1.5])]

@pytest.mark.parametrize('path', STORED, ids=lambda p: p.name)
def test_no_stored_interval_excludes_its_estimate(path):
    for where, est, (lo, hi) in intervals(json.loads(path.read_text())):
        assert lo <= est <= hi, f"{path.name}{where}: {est} outside {lo}–{hi}"
