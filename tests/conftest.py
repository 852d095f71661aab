"""Threads under pytest-xdist. README command 2 runs the tests in two workers (`pytest -n 2`); each worker, and every process
it starts (the tutorials, the command line, torchrun), gets its share of the cores, so that two workers of all-core torch on
a 2-core machine do not oversubscribe it."""
import os

if os.environ.get('PYTEST_XDIST_WORKER'):
    share = str(max(1, (os.cpu_count() or 1) // int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))))
    os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = share
    import torch
    torch.set_num_threads(int(share))
