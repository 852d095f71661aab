"""Your own images through the `diffnotes` command, as a user runs it: class folders of grey or colour images trained
class-conditionally (`--cond`) with either model, and a folder without classes trained unconditionally."""
import os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

EXE = Path(sys.executable).parent / 'diffnotes'
TINY = ['--epochs', '1', '--channels', '8,16', '--bs', '8', '--n-samples', '4', '--sample-steps', '5', '--size', '16']

def write_folder(root, classes, n=12, mode='L', seed=0):
    "`n` random 16×16 images of `mode` in each folder of `classes` under `root` (images in `root` itself for [''])"
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (16, 16, 3) if mode == 'RGB' else (16, 16)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / c / f'{i}.png')
    return root

def train(data, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([str(EXE), 'train', '--data', str(data), '--out', 'run', *TINY, *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300, env=env)

@pytest.mark.parametrize('mode,model,args', [
    ('L', 'tiny', ['--cond']),
    ('RGB', 'tiny', ['--cond', '--in-channels', '3']),
    ('RGB', 'unet', ['--cond', '--in-channels', '3']),
    ('L', 'tiny', []),
], ids=['grey-cond-tiny', 'rgb-cond-tiny', 'rgb-cond-unet', 'flat-uncond-tiny'])
def test_train_on_image_folder(tmp_path, mode, model, args):
    "fastai's typed batches (`TensorImage`, `TensorCategory`) reach the models; the run exits 0 and writes its files"
    data = write_folder(tmp_path / 'imgs', ['cat', 'dog', 'emu'] if args else [''], n=12 if args else 36, mode=mode)
    r = train(data, '--model', model, *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'TensorImage' not in r.stderr
    for f in ('model.pt', 'samples.png'): assert (tmp_path / 'run' / f).exists(), f
    from diffnotes.checkpoints import load_checkpoint
    cfg = load_checkpoint(tmp_path / 'run')['config']
    assert cfg['cond'] == bool(args) and cfg['model'] == model
    if args: assert cfg['n_classes'] == 3


def test_fid_against_an_rgb_folder(tmp_path):
    ("`diffnotes fid RUN --ref FOLDER` on a run trained on RGB class folders: a classifier of the folder, FID with its "
     "interval, fidelity and diversity, and memorisation against the run's own train/ and valid/ images")
    data = tmp_path / 'imgs'
    for split, n in (('train', 40), ('valid', 12)):
        write_folder(data / split, ['cat', 'dog', 'emu'], n=n, mode='RGB', seed=len(split))
    r = train(data, '--cond', '--in-channels', '3', '--n-samples', '16', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    f = subprocess.run([str(EXE), 'fid', 'run', '--ref', str(data)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=300, env=env)
    assert f.returncode == 0, f.stderr[-3000:]
    for phrase in ('held-out accuracy', 'FID ', '(n=16, 95% CI', 'real-data floor at n=16', 'precision',
                   'coverage', 'nearer a training image'):
        assert phrase in f.stdout, (phrase, f.stdout)
