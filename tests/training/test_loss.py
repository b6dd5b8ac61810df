"""The loss terms, lazy-regularisation phases, stats collector and checkpoint helpers, on tiny
stand-in networks whose derivatives are known in closed form."""

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from torch_utils import checkpoint
from torch_utils.training_stats import StatsCollector
from training.config import resolve_config
from training.loss import StyleGAN2Loss
from training.training_loop import build_phases, chunk_seed

RES, NUM_WS, W_DIM = 4, 3, 16     # W_DIM == RES * RES so a "synthesis" can reshape w into an image


class LinearD(torch.nn.Module):
    """D(x) = sum(w * x): grad_x D = w, so R1 = |w|^2 exactly."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn([1, 1, RES, RES]) * 0.5)
        self.seen = []

    def forward(self, img, c=None):
        self.seen.append(img.detach().clone())
        return (img * self.weight).sum([1, 2, 3])[:, None]                 # [N, 1]


class StandInG(torch.nn.Module):
    """mapping: ws_k = z * scale (same w for every k); synthesis: image = gain * sum_k ws_k."""

    def __init__(self):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.c_dim = W_DIM, W_DIM, NUM_WS, 0
        self.scale = torch.nn.Parameter(torch.tensor(1.5))
        self.gain = torch.nn.Parameter(torch.tensor(2.0))
        self.mapping = lambda z, c, update_emas=False: (z * self.scale)[:, None].repeat(1, NUM_WS, 1)
        self.synthesis = lambda ws, noise_mode='const', update_emas=False: \
            (self.gain * ws.sum(1)).reshape(-1, 1, RES, RES)


def _loss(**kwargs):
    torch.manual_seed(0)
    return StyleGAN2Loss(StandInG(), LinearD(), **kwargs)


def test_r1_is_lazy_weighted_and_second_order():
    loss = _loss(r1_gamma=3.0)
    real = torch.randn([5, 1, RES, RES])
    loss.accumulate_gradients('Dreg', real, None, None, None, gain=16, num_chunks=1, cur_nimg=0)
    w = loss.D.weight.detach()
    # R1 = gamma/2 |w|^2 for every sample; d/dw = gamma w; times the lazy interval 16.
    torch.testing.assert_close(loss.D.weight.grad, 16 * 3.0 * w)


def test_discriminator_main_is_non_saturating_logistic():
    loss = _loss(r1_gamma=0.0)
    real, z = torch.randn([4, 1, RES, RES]), torch.randn([4, W_DIM])
    loss.accumulate_gradients('Dmain', real, None, z, None, gain=1, num_chunks=2, cur_nimg=0)
    got = loss.D.weight.grad.clone()
    w = loss.D.weight.detach().clone().requires_grad_(True)
    fake = (2.0 * 3 * 1.5 * z).reshape(-1, 1, RES, RES)
    expected = (F.softplus((fake * w).sum([1, 2, 3])).mean() + F.softplus(-(real * w).sum([1, 2, 3])).mean()) / 2
    expected.backward()
    torch.testing.assert_close(got, w.grad)
    assert loss.G.scale.grad is None, "D's phase must not build a graph through G"


def test_chunks_sum_to_the_full_batch_gradient():
    real, z = torch.randn([6, 1, RES, RES]), torch.randn([6, W_DIM])
    full = _loss(r1_gamma=1.0)
    full.accumulate_gradients('Dboth', real, None, z, None, gain=1, num_chunks=1, cur_nimg=0)
    split = _loss(r1_gamma=1.0)
    for part in (slice(0, 3), slice(3, 6)):
        split.accumulate_gradients('Dboth', real[part], None, z[part], None, gain=1, num_chunks=2, cur_nimg=0)
    torch.testing.assert_close(full.D.weight.grad, split.D.weight.grad)


def test_generator_main_gradient():
    loss = _loss()
    z = torch.randn([3, W_DIM])
    loss.accumulate_gradients('Gmain', None, None, z, None, gain=1, num_chunks=1, cur_nimg=0)
    g = loss.G.gain.detach().clone().requires_grad_(True)
    w = loss.D.weight.detach()
    img = (g * 3 * 1.5 * z).reshape(-1, 1, RES, RES)
    F.softplus(-(img * w).sum([1, 2, 3])).mean().backward()
    torch.testing.assert_close(loss.G.gain.grad, g.grad)


def test_path_length_penalty_and_running_mean():
    loss = _loss(pl_weight=2.0, pl_batch_shrink=2, pl_decay=0.01)
    z = torch.randn([4, W_DIM])
    torch.manual_seed(7)
    loss.accumulate_gradients('Greg', None, None, z, torch.zeros([4, 0]), gain=4, num_chunks=1, cur_nimg=0)
    # Closed form: img = gain * sum_k ws_k, so J_k^T y = gain * y for each of the num_ws ws and
    # the length is sqrt(mean_k |gain y|^2) = gain |y|; y is the noise drawn after the forward pass.
    torch.manual_seed(7)
    y = torch.randn([2, 1, RES, RES]) / math.sqrt(RES * RES)
    lengths = 2.0 * y.flatten(1).norm(dim=1)                              # [2]
    assert float(loss.pl_mean) == 0.0, 'the target moves only when the phase finishes'
    loss.finish_phase('Greg')
    torch.testing.assert_close(loss.pl_mean, 0.01 * lengths.mean())
    # d/dgain of mean((gain |y|)^2) * pl_weight * interval (target was 0 during the phase).
    expected = 4 * 2.0 * (2 * 2.0 * y.flatten(1).square().sum(1)).mean()
    torch.testing.assert_close(loss.G.gain.grad, expected)


def test_style_mixing_takes_later_ws_from_a_second_latent():
    loss = _loss(style_mixing_prob=1.0)
    z = torch.randn([2, W_DIM])
    torch.manual_seed(3)
    _, ws = loss.run_G(z, None)
    first = (z * 1.5)[:, None]
    same = torch.isclose(ws, first.expand_as(ws)).all(dim=2).all(dim=0)   # [num_ws]
    cutoff = int(same.logical_not().nonzero()[0])
    assert 1 <= cutoff < NUM_WS and same[:cutoff].all() and not same[cutoff:].any()


def test_blur_schedule_and_filter():
    loss = _loss(blur_init_sigma=10, blur_fade_kimg=2)
    assert loss.blur_sigma(0) == 10 and loss.blur_sigma(1000) == 5 and loss.blur_sigma(5000) == 0
    img = torch.ones([1, 1, RES, RES])
    img[..., 0, 0] = 5
    loss.run_D(img, None, blur_sigma=1.0)
    blurred = loss.D.seen[-1]
    assert blurred.shape == img.shape
    assert float(blurred[..., 0, 0]) < 5 and float(blurred[..., 0, 1]) > 1   # the spike spreads
    loss.run_D(img, None, blur_sigma=0.0)
    assert torch.equal(loss.D.seen[-1], img)


def test_real_logits_reach_the_ada_hook_and_stats():
    seen, stats = [], StatsCollector()
    loss = _loss(stats=stats, real_logits_hook=seen.append)
    real, z = torch.randn([4, 1, RES, RES]), torch.randn([4, W_DIM])
    loss.accumulate_gradients('Dmain', real, None, z, None, gain=1, num_chunks=1, cur_nimg=0)
    assert len(seen) == 1 and seen[0].shape == (4, 1)
    result = stats.collect()
    assert result['Loss/signs/real']['num'] == 4
    torch.testing.assert_close(result['Loss/signs/real']['mean'], float(seen[0].sign().mean()), check_dtype=False)


def test_lazy_phases_follow_the_reference_presets():
    G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    sg2 = build_phases(resolve_config(cfg='stylegan2', data='x', batch=32, gamma=10), G, D)
    assert [(p.name, p.interval) for p in sg2] == [('Gmain', 1), ('Greg', 4), ('Dmain', 1), ('Dreg', 16)]
    group = sg2[2].opt.param_groups[0]
    assert group['lr'] == pytest.approx(0.002 * 16 / 17)
    assert group['betas'][1] == pytest.approx(0.99 ** (16 / 17))
    assert sg2[0].opt.param_groups[0]['lr'] == pytest.approx(0.002 * 4 / 5)
    sg3 = build_phases(resolve_config(cfg='stylegan3-t', data='x', batch=32, gamma=10), G, D)
    assert [(p.name, p.interval) for p in sg3] == [('Gboth', 1), ('Dmain', 1), ('Dreg', 16)]
    assert sg3[0].opt.param_groups[0]['lr'] == pytest.approx(0.0025)


def test_chunk_seeds_are_stable_and_distinct():
    seeds = {chunk_seed(0, b, p, k) for b in range(20) for p in range(4) for k in range(4)}
    assert len(seeds) == 20 * 4 * 4
    assert chunk_seed(1, 2, 3, 4) == chunk_seed(1, 2, 3, 4) > 0


def test_stats_collector_moments():
    stats = StatsCollector()
    stats.report('a', torch.tensor([1.0, 2.0, 3.0]))
    stats.report('a', 4.0)
    stats.report('empty', torch.zeros([0]))
    result = stats.collect()
    assert result['a']['num'] == 4 and result['a']['mean'] == 2.5
    assert result['a']['std'] == pytest.approx(np.std([1, 2, 3, 4]))
    assert 'empty' not in result and stats.collect() == {}


def test_rng_state_round_trip(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    state = checkpoint.capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    checkpoint.atomic_save({'rng': state}, tmp_path / 's.pt')
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    checkpoint.restore_rng_state(torch.load(tmp_path / 's.pt', weights_only=True)['rng'])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


def test_atomic_save_keeps_the_previous_file_on_failure(tmp_path):
    path = tmp_path / 'training-state.pt'
    checkpoint.save_training_state(path, {'progress': {'cur_nimg': 1}})
    with pytest.raises(Exception):
        checkpoint.save_training_state(path, {'bad': lambda: None})  # not picklable
    assert checkpoint.load_training_state(path)['progress'] == {'cur_nimg': 1}
    assert [p.name for p in tmp_path.iterdir()] == ['training-state.pt']
    path.write_bytes(b'truncated')
    with pytest.raises(checkpoint.CheckpointError, match='not a readable training state'):
        checkpoint.load_training_state(path)


def test_strict_module_load_names_the_mismatch():
    module = torch.nn.Linear(3, 2)
    with pytest.raises(checkpoint.CheckpointError, match=r'weight.*\[2, 4\].*\[2, 3\]'):
        checkpoint.load_module_state(module, {'weight': torch.zeros(2, 4), 'bias': torch.zeros(2)}, 'G', 'x.pt')
