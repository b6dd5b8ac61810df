"""Shared pieces of the training tests: tiny datasets, tiny configs, running train.py."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import PIL.Image
import torch

REPO = pathlib.Path(__file__).resolve().parents[2]

# Tiny networks: 16x16 images, 32-dim latents, <= 32 channels; a step takes ~0.1-0.5 s on one core.
TINY = ['--cbase', '256', '--cmax', '32', '--map-depth', '2', '--w-dim', '32', '--sg3-layers', '4',
        '--metrics', 'none', '--workers', '0', '--deterministic']


def make_dataset(root, num=32, res=16, channels=3, labels=False, seed=0) -> pathlib.Path:
    """A folder of `num` random-ish PNGs (left half darker, so there is something to learn)."""
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    entries = []
    for i in range(num):
        img = (rng.rand(res, res, channels) * 255).astype(np.uint8)
        img[:, : res // 2] //= 2
        name = f'img{i:03d}.png'
        PIL.Image.fromarray(img[:, :, 0] if channels == 1 else img).save(root / name)
        entries.append([name, i % 3])
    if labels:
        (root / 'dataset.json').write_text(json.dumps({'labels': entries}))
    return root


def train_env() -> dict:
    # One thread per process: the test machine's 2 cores are shared, and oversubscribed
    # OpenMP threads make tiny convolutions ~10x slower.
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONHASHSEED='0')
    env['PYTHONPATH'] = str(REPO) + os.pathsep + env.get('PYTHONPATH', '')
    return env


def train_cmd(*args) -> list[str]:
    return [sys.executable, str(REPO / 'train.py'), *map(str, args)]


def run_train(*args, check=True, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run(train_cmd(*args), cwd=REPO, env=train_env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'train.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def only_run_dir(outdir) -> pathlib.Path:
    runs = [p for p in pathlib.Path(outdir).iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def load_state(run_dir) -> dict:
    return torch.load(pathlib.Path(run_dir) / 'training-state.pt', map_location='cpu', weights_only=True)


def flat_tensors(tree, prefix='') -> dict:
    """{'G/state_dict/x': tensor, ...} for every tensor in a nested dict/list."""
    out = {}
    if isinstance(tree, torch.Tensor):
        out[prefix] = tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            out.update(flat_tensors(v, f'{prefix}/{k}'))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            out.update(flat_tensors(v, f'{prefix}/{i}'))
    return out
