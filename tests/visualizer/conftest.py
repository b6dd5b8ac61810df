"""Fixtures of the visualizer tests: an X display (own Xvfb when DISPLAY is unset) and a tiny
StyleGAN3-T network file."""

import os
import shutil
import subprocess

import pytest

TINY_SG3 = dict(img_resolution=16, channel_base=256, channel_max=16, z_dim=16, w_dim=16, num_layers=4)


@pytest.fixture(scope='session')
def x_display():
    """DISPLAY of a running X server; starts Xvfb for the session if there is none."""
    if os.environ.get('DISPLAY'):
        yield os.environ['DISPLAY']
        return
    xvfb = shutil.which('Xvfb')
    if xvfb is None:
        pytest.skip('Xvfb is not installed (apt install xvfb) and DISPLAY is unset: the GUI tests need an X display.')
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([xvfb, '-displayfd', str(write_fd), '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'],
                            pass_fds=[write_fd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()      # Xvfb writes the display number once it accepts clients
    if not number:
        proc.kill()
        pytest.skip('Xvfb did not start.')
    os.environ['DISPLAY'] = f':{number}'
    try:
        yield os.environ['DISPLAY']
    finally:
        del os.environ['DISPLAY']
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope='session')
def tiny_sg3(tmp_path_factory):
    """Path of a 16x16 StyleGAN3-T generator (random weights, 4 layers, 16 channels)."""
    import torch
    from torch_utils import network_files
    from training import registry
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = registry.create_generator('stylegan3-t', **TINY_SG3)
    path = tmp_path_factory.mktemp('nets') / 'tiny-sg3t.safetensors'
    network_files.export_safetensors(G, path)
    return str(path)
