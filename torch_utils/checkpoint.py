"""`training-state.pt`: everything needed to continue a training run exactly.

The file is a plain dict written with `torch.save` and readable with
`torch.load(weights_only=True)` (DESIGN 4.1): tensors, numbers, strings, lists and dicts only,
no pickled classes. It is written to a temporary name in the same folder and renamed, so a
kill at any moment leaves either the previous or the new complete file.

Contents (written by `training.training_loop`):

    format          STATE_FORMAT
    config          the resolved training config (dict)
    progress        cur_nimg, cur_tick, batch_idx, tick_start_nimg, ...
    G, D, G_ema     {'arch', 'init_kwargs', 'state_dict'}  (same shape as in network files)
    augment_pipe    state_dict or None
    ada             ADA controller state or None
    G_opt, D_opt    optimizer state_dicts
    loss            loss state (path-length running mean)
    sampler         data-sampler position
    rng             RNG states of torch (CPU, CUDA), numpy and python `random`
"""

import os
import pathlib
import random

import numpy as np
import torch

STATE_FORMAT = 'stylegan-toolkit/training-state/1'
STATE_FILE = 'training-state.pt'


class CheckpointError(ValueError):
    """A training state that cannot be used; the message names the file."""


def atomic_save(obj, path) -> None:
    """torch.save to `<path>.tmp-<pid>` in the same folder, fsync, then rename over `path`."""
    path = pathlib.Path(path)
    tmp = path.with_name(f'{path.name}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_training_state(path, state: dict) -> None:
    atomic_save({'format': STATE_FORMAT, **state}, path)


def load_training_state(path, map_location='cpu') -> dict:
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f'{path} does not exist; nothing to resume from.')
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise CheckpointError(f'{path} is not a readable training state ({type(exc).__name__}: {exc}).') from None
    if not isinstance(state, dict) or state.get('format') != STATE_FORMAT:
        raise CheckpointError(f'{path} is not a training state written by this toolkit '
                              f'(expected format {STATE_FORMAT!r}).')
    return state


# ----------------------------------------------------------------------------------------------
# RNG states as weights_only-safe data (tensors and plain numbers, no numpy objects).

def capture_rng_state() -> dict:
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        'torch': torch.get_rng_state(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        'numpy': {'kind': str(np_kind), 'keys': torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  'pos': int(np_pos), 'has_gauss': int(np_has_gauss), 'gauss': float(np_gauss)},
        'python': {'version': int(py_version), 'internal': list(py_internal), 'gauss': py_gauss},
    }


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state['torch'].cpu())
    if state.get('cuda') and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])
    npst = state['numpy']
    np.random.set_state((npst['kind'], npst['keys'].numpy().astype(np.uint32), npst['pos'],
                         npst['has_gauss'], npst['gauss']))
    pyst = state['python']
    random.setstate((pyst['version'], tuple(pyst['internal']), pyst['gauss']))


# ----------------------------------------------------------------------------------------------

def network_entry(module: torch.nn.Module, arch: str) -> dict:
    """{'arch', 'init_kwargs', 'state_dict'} of a network (CPU copies of its tensors)."""
    return {'arch': arch, 'init_kwargs': dict(getattr(module, 'init_kwargs', {}) or {}),
            'state_dict': {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}}


def load_module_state(module: torch.nn.Module, state_dict: dict, what: str, path='training state'):
    """Strict load with one clear sentence on mismatch."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or wrong:
        detail = (f'{len(missing)} missing (e.g. {missing[:1]}), {len(unexpected)} unexpected '
                  f'(e.g. {unexpected[:1]}), {len(wrong)} with another shape '
                  f'(e.g. {[(k, list(state_dict[k].shape), list(own[k].shape)) for k in wrong[:1]]})')
        raise CheckpointError(f'{what} in {path} does not match the network: {detail}.')
    module.load_state_dict(state_dict, strict=True)


def latest_run_dir(outdir) -> pathlib.Path:
    """The highest-numbered `NNNNN-*` run folder in `outdir` that holds a training state."""
    outdir = pathlib.Path(outdir)
    runs = []
    if outdir.is_dir():
        for child in outdir.iterdir():
            prefix = child.name.split('-', 1)[0]
            if child.is_dir() and prefix.isdigit() and (child / STATE_FILE).is_file():
                runs.append((int(prefix), child))
    if not runs:
        raise CheckpointError(f'no run folder with a {STATE_FILE} found in {outdir}.')
    return max(runs)[1]
