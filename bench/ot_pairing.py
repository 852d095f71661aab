"""What minibatch optimal-transport pairing costs a flow run's training step, measured side by side.

    python bench/ot_pairing.py [--steps 40] [--repeats 3] [--out bench/results/ot_pairing.json]

Times `steps` training steps of the default flow run's Learner (`build_learner(RunConfig(callback='flow'))` on the
embedded subset, float32) with `ot` off and on, interleaved and repeated, and reports images per second and the
ratio of the two medians measured in the same process. Beside it, `ot_pair` alone on a batch of the run's size:
the distance matrix and the exact assignment (SciPy's `linear_sum_assignment`), which is all that `ot` adds.
"""
import argparse, contextlib, io, json, platform, statistics, sys, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import torch
from diffnotes.config import RunConfig
from diffnotes.learner import build_learner
from diffnotes.callbacks import ot_pair
sys.path.insert(0, str(Path(__file__).parent))
from train_profile import train_steps  # the same timing of training steps as the profile's

def learner(ot):
    "The default flow run's Learner, quiet, float32 on the CPU, with or without OT pairing"
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        learn = build_learner(RunConfig(callback='flow', ot=ot, precision='fp32'), progress=False)
    learn.remove_cbs([c for c in learn.cbs if type(c).__name__ == 'EpochLine'])
    return learn

def pair_seconds(bs, shape, reps=50):
    "Median seconds of `ot_pair` on one batch of `bs` images of `shape`"
    x0, noise = torch.randn(bs, *shape), torch.randn(bs, *shape)
    ot_pair(x0, noise)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        ot_pair(x0, noise)
        times.append(time.perf_counter() - start)
    return statistics.median(times)

def main(steps=40, repeats=3, out='bench/results/ot_pairing.json'):
    learns = {ot: learner(ot) for ot in (False, True)}
    for learn in learns.values(): train_steps(learn, 3)  # warm up
    times = {False: [], True: []}
    for _ in range(repeats):
        for ot, learn in learns.items(): times[ot].append(train_steps(learn, steps))
    bs = learns[False].dls.train.bs
    med = {ot: statistics.median(t) for ot, t in times.items()}
    res = {'steps': steps, 'repeats': repeats, 'bs': bs, 'threads': torch.get_num_threads(),
           'cpu': platform.processor() or platform.machine(), 'torch': torch.__version__,
           'images_per_s': {'off': bs * steps / med[False], 'on': bs * steps / med[True]},
           'step_time_ratio': med[True] / med[False], 'seconds': {'off': times[False], 'on': times[True]},
           'ot_pair_ms': 1000 * pair_seconds(bs, (1, 32, 32)), 'step_ms': 1000 * med[False] / steps}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(res, indent=1) + '\n')
    print(f"{bs} images a batch, {res['threads']} threads: {res['images_per_s']['off']:.0f} images/s without OT, "
          f"{res['images_per_s']['on']:.0f} with (step time × {res['step_time_ratio']:.3f}); "
          f"ot_pair alone {res['ot_pair_ms']:.2f} ms against a {res['step_ms']:.1f} ms step")
    return res

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=40)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--out', default='bench/results/ot_pairing.json')
    main(**vars(p.parse_args()))
