"""The native CPU backend against the reference backend (the definition of correctness).

Random tiny shapes (odd sizes, batch > 1) over the up/down/padding/filter combinations of
StyleGAN2 and StyleGAN3, forward and backward, float32 and float64; gradcheck on float64; the
build cache's handling of damaged entries. Comparisons go through the public ops with
impl='ref' vs impl='native'.
"""

import json
import math
import random

import numpy as np
import pytest
import torch

from ops import backend, bias_act, filtered_lrelu, upfirdn2d
from ops.native import build, functions

pytestmark = pytest.mark.skipif(not backend.native_available(), reason='native ops backend unavailable')

_TOL = {torch.float32: 2e-5, torch.float64: 1e-11}  # relative to the largest reference value


def assert_close(actual, expected, what=''):
    scale = expected.abs().max().item() or 1.0
    err = (actual - expected).abs().max().item() / scale
    assert err <= _TOL[expected.dtype], f'{what}: relative error {err:.3g}'


def kaiser_like(taps, gen):
    """A smooth symmetric low-pass (like the SG3 filters) with unit DC gain."""
    t = torch.linspace(-1, 1, taps, dtype=torch.float64)
    f = torch.sinc(t * taps / 4) * torch.cos(t * math.pi / 2) ** 2 + 0.01 * torch.rand(taps, generator=gen, dtype=torch.float64)
    return (f / f.sum()).float()


def make_filter(kind, gen):
    if kind is None:
        return None
    if kind == 'radial12':  # 2-D radially symmetric, as stylegan3-r's jinc down filters
        r = torch.cdist(torch.stack(torch.meshgrid(torch.arange(12.), torch.arange(12.), indexing='ij'), -1).reshape(-1, 2),
                        torch.tensor([[5.5, 5.5]])).reshape(12, 12)
        f = torch.cos(r.clamp(max=6) * math.pi / 12) ** 2 * torch.sinc(r / 3)
        return (f / f.sum()).float()
    if kind == 'binom44':
        return upfirdn2d.setup_filter([1, 3, 3, 1])
    if kind == 'rand2d35':  # non-symmetric 2-D, height 3, width 5
        f = torch.rand(3, 5, generator=gen)
        return f / f.sum()
    if kind.startswith('asym'):
        f = torch.rand(int(kind[4:]), generator=gen)
        return f / f.sum()
    return kaiser_like(int(kind), gen)  # '12', '24', ...


def grad_pair(fn, inputs, y_shape, gen, dtype):
    """Output and gradients of sum(y * w) for a fixed random w."""
    inputs = [t.detach().clone().requires_grad_() if t is not None else None for t in inputs]
    y = fn(*inputs)
    w = torch.randn(y_shape, generator=gen, dtype=torch.float64).to(dtype)
    grads = torch.autograd.grad((y * w).sum(), [t for t in inputs if t is not None])
    return y.detach(), grads


def compare(fn_of_impl, inputs, gen, dtype, what):
    y_ref = fn_of_impl('ref')(*inputs)
    y_ref, g_ref = grad_pair(fn_of_impl('ref'), inputs, y_ref.shape, torch.Generator().manual_seed(7), dtype)
    y_nat, g_nat = grad_pair(fn_of_impl('native'), inputs, y_ref.shape, torch.Generator().manual_seed(7), dtype)
    assert y_nat.shape == y_ref.shape, what
    assert y_nat.dtype == y_ref.dtype, what
    assert_close(y_nat, y_ref, f'{what} forward')
    for i, (gn, gr) in enumerate(zip(g_nat, g_ref)):
        assert_close(gn, gr, f'{what} grad {i}')


# ----------------------------------------------------------------------------------------------
# upfirdn2d

# (filter, up, down, padding) as StyleGAN2/3 use them, plus awkward ones.
UPFIRDN_CASES = [
    ('12', 2, 1, [6, 5, 6, 5]),            # SG3 up stage of filtered_lrelu (and upsample2d)
    ('24', 4, 1, [13, 10, 13, 10]),        # SG3 up=4 stage
    ('12', 1, 2, [5, 5, 5, 5]),            # SG3 down stage / downsample2d
    ('12', 1, 2, 0),                       # filtered_lrelu's down stage (no padding)
    ('24', 4, 1, [-6, -9, -6, -9]),        # negative padding = crop (SG3 L5)
    ('radial12', 1, 2, 0),                 # SG3-R 2-D down filter
    ('binom44', 2, 1, [2, 1, 2, 1]),       # SG2 upsample2d
    ('binom44', 1, 2, [1, 1, 1, 1]),       # SG2 downsample2d
    ('binom44', 1, 1, [1, 1, 1, 1]),       # SG2 filter2d after transposed conv
    ('binom44', 1, 1, [2, 2, 2, 2]),       # SG2 D filter before strided conv
    ('asym7', 2, 2, [-1, 3, 2, -2]),       # up and down together
    ('asym8', 1, 4, [3, 4, 2, 1]),
    ('rand2d35', [2, 1], [1, 2], [2, 1, 0, 1]),  # anisotropic
    (None, 1, 1, [-2, 1, 0, -3]),          # pure crop/pad
    (None, 2, 1, 0),                       # zero insertion only
    (None, 1, 2, 0),                       # decimation only
]


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('case', UPFIRDN_CASES, ids=lambda c: str(c))
def test_upfirdn2d_matches_ref(case, flip, dtype):
    kind, up, down, padding = case
    gen = torch.Generator().manual_seed(hash(str(case)) % 1000)
    f = make_filter(kind, gen)
    x = torch.randn([2, 3, 13, 15], generator=gen, dtype=torch.float64).to(dtype)
    fn = lambda impl: (lambda x: upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding,
                                                      flip_filter=flip, gain=1.7, impl=impl))
    compare(fn, [x], gen, dtype, f'upfirdn2d {case}')


def test_upfirdn2d_random_sweep():
    rng = random.Random(1)
    gen = torch.Generator().manual_seed(1)
    kinds = [None, '12', '24', 'asym5', 'asym8', 'binom44', 'rand2d35']
    ran = 0
    for trial in range(40):
        kind = rng.choice(kinds)
        f = make_filter(kind, gen)
        fw = 1 if f is None else f.shape[-1]
        fh = 1 if f is None else (f.shape[0] if f.ndim == 2 else f.shape[0])
        up = [rng.choice([1, 2, 4]), rng.choice([1, 2, 4])]
        down = [rng.choice([1, 2]), rng.choice([1, 2])]
        n, c, h, w = rng.randint(1, 3), rng.randint(1, 3), rng.randint(3, 17), rng.randint(3, 17)
        pad = [rng.randint(-3, fw + 2), rng.randint(-3, fw + 2), rng.randint(-3, fh + 2), rng.randint(-3, fh + 2)]
        if w * up[0] + pad[0] + pad[1] - fw < 0 or h * up[1] + pad[2] + pad[3] - fh < 0:
            continue
        dtype = rng.choice([torch.float32, torch.float64])
        x = torch.randn([n, c, h, w], generator=gen, dtype=torch.float64).to(dtype)
        flip, gain = rng.random() < 0.5, rng.uniform(0.5, 4)
        fn = lambda impl: (lambda x: upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=pad,
                                                          flip_filter=flip, gain=gain, impl=impl))
        compare(fn, [x], gen, dtype, f'trial {trial}: {kind} up {up} down {down} pad {pad} x {list(x.shape)}')
        ran += 1
    assert ran >= 25, f'only {ran} valid random configurations'


def test_upfirdn2d_second_order_matches_ref():
    """R1 needs d/dx of a gradient that went through upfirdn2d."""
    gen = torch.Generator().manual_seed(3)
    f = make_filter('binom44', gen)
    x0 = torch.randn([2, 3, 9, 10], generator=gen, dtype=torch.float64)
    results = {}
    for impl in ('ref', 'native'):
        x = x0.clone().requires_grad_()
        y = upfirdn2d.upfirdn2d(x, f, down=2, padding=1, impl=impl)
        gx, = torch.autograd.grad((y ** 3).sum(), x, create_graph=True)
        results[impl] = torch.autograd.grad((gx ** 2).sum(), x)[0]
    assert_close(results['native'], results['ref'], 'second order')


# ----------------------------------------------------------------------------------------------
# filtered_lrelu

# (fu, fd, up, down, padding, input size): the StyleGAN3 layer kinds at small sizes.
FLRELU_CASES = [
    ('12', '12', 2, 2, [9, 8, 9, 8], 14),           # SG3-T ordinary layer
    ('24', '12', 4, 2, [-6, -9, -6, -9], 16),       # SG3-T layer with up=4
    ('12', '12', 2, 2, [-11, -12, -11, -12], 30),   # critically sampled layer (crop)
    ('12', 'radial12', 2, 2, [11, 10, 11, 10], 12),  # SG3-R radial down filter
    ('rand2d35', 'asym5', 3, 2, [2, -1, 0, 3], 9),  # generic 2-D fu, odd factors
    ('12', None, 2, 1, [6, 5, 6, 5], 7),            # no down filter
    (None, '12', 1, 2, [5, 5, 5, 5], 13),           # no up filter
]


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('clamp', [None, 0.9])
@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('case', FLRELU_CASES, ids=lambda c: str(c))
def test_filtered_lrelu_matches_ref(case, flip, clamp, dtype):
    fu_kind, fd_kind, up, down, padding, size = case
    gen = torch.Generator().manual_seed(hash(str(case)) % 1000)
    fu, fd = make_filter(fu_kind, gen), make_filter(fd_kind, gen)
    x = torch.randn([2, 3, size, size + 1], generator=gen, dtype=torch.float64).to(dtype)
    b = torch.randn([3], generator=gen, dtype=torch.float64).to(dtype) * 0.3
    fn = lambda impl: (lambda x, b: filtered_lrelu.filtered_lrelu(
        x, fu, fd, b, up=up, down=down, padding=padding, gain=math.sqrt(2), slope=0.2,
        clamp=clamp, flip_filter=flip, impl=impl))
    compare(fn, [x, b], gen, dtype, f'filtered_lrelu {case}')


def test_filtered_lrelu_torgb_like():
    """No filters, slope 1, gain 1: bias + clamp only (the ToRGB layer)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn([2, 3, 8, 7], generator=gen) * 300
    b = torch.randn([3], generator=gen)
    fn = lambda impl: (lambda x, b: filtered_lrelu.filtered_lrelu(x, None, None, b, gain=1, slope=1, clamp=256, impl=impl))
    compare(fn, [x, b], gen, torch.float32, 'torgb')


def test_filtered_lrelu_random_sweep():
    rng = random.Random(2)
    gen = torch.Generator().manual_seed(2)
    ran = 0
    for trial in range(25):
        fu_kind, fd_kind = rng.choice([None, '12', 'asym6', 'rand2d35']), rng.choice([None, '12', 'asym5'])
        fu, fd = make_filter(fu_kind, gen), make_filter(fd_kind, gen)
        up, down = rng.choice([1, 2, 3, 4]), rng.choice([1, 2])
        ku = 1 if fu is None else fu.shape[-1]
        h, w = rng.randint(4, 15), rng.randint(4, 15)
        pad = [rng.randint(-2, ku), rng.randint(-2, ku), rng.randint(-2, ku), rng.randint(-2, ku)]
        kd = 1 if fd is None else fd.shape[-1]
        kuh = 1 if fu is None else fu.shape[0]
        if w * up + pad[0] + pad[1] - ku - kd + 2 < 1 or h * up + pad[2] + pad[3] - kuh - kd + 2 < 1:
            continue
        dtype = rng.choice([torch.float32, torch.float64])
        x = torch.randn([rng.randint(1, 2), 3, h, w], generator=gen, dtype=torch.float64).to(dtype)
        b = torch.randn([3], generator=gen, dtype=torch.float64).to(dtype)
        kw = dict(up=up, down=down, padding=pad, gain=rng.uniform(0.5, 2), slope=rng.uniform(0, 0.5),
                  clamp=rng.choice([None, 1.0]), flip_filter=rng.random() < 0.5)
        fn = lambda impl: (lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl=impl, **kw))
        compare(fn, [x, b], gen, dtype, f'trial {trial}: {fu_kind}/{fd_kind} {kw} x {list(x.shape)}')
        ran += 1
    assert ran >= 15, f'only {ran} valid random configurations'


def test_filtered_lrelu_no_grad_needs_no_mask():
    """Inference does not pay for the backward pass's mask."""
    x = torch.randn([1, 2, 10, 10])
    f = kaiser_like(12, torch.Generator().manual_seed(0))
    y1 = functions.filtered_lrelu(x, f, f, None, 2, 2, (9, 8, 9, 8), math.sqrt(2), 0.2, None, False)
    y2 = functions.filtered_lrelu(x.requires_grad_(), f, f, None, 2, 2, (9, 8, 9, 8), math.sqrt(2), 0.2, None, False)
    assert torch.equal(y1, y2.detach())


# ----------------------------------------------------------------------------------------------
# bias_act

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('act', sorted(bias_act.ACTIVATIONS))
def test_bias_act_matches_ref_with_second_order(act, dtype):
    gen = torch.Generator().manual_seed(len(act))
    x0 = torch.randn([3, 5, 4, 3], generator=gen, dtype=torch.float64).to(dtype) * 2
    b0 = torch.randn([5], generator=gen, dtype=torch.float64).to(dtype)
    w = torch.randn([3, 5, 4, 3], generator=gen, dtype=torch.float64).to(dtype)
    for clamp in (None, 1.1):
        out = {}
        for impl in ('ref', 'native'):
            x, b = x0.clone().requires_grad_(), b0.clone().requires_grad_()
            y = bias_act.bias_act(x, b, act=act, clamp=clamp, impl=impl)
            gx, gb = torch.autograd.grad((y * y * w).sum(), [x, b], create_graph=True)
            g2 = torch.autograd.grad((gx ** 2).sum() + (gb ** 2).sum(), [x, b])
            out[impl] = [y.detach(), gx.detach(), gb.detach(), *g2]
        for name, n, r in zip(['y', 'gx', 'gb', 'g2x', 'g2b'], out['native'], out['ref']):
            assert_close(n, r, f'{act} clamp={clamp} {name}')


@pytest.mark.parametrize('dim', [0, 1, 2])
def test_bias_act_dims_and_no_bias(dim):
    gen = torch.Generator().manual_seed(dim)
    x = torch.randn([4, 3, 5], generator=gen, dtype=torch.float64)
    b = torch.randn([x.shape[dim]], generator=gen, dtype=torch.float64)
    fn = lambda impl: (lambda x, b: bias_act.bias_act(x, b, dim=dim, act='swish', gain=1.3, impl=impl))
    compare(fn, [x, b], gen, torch.float64, f'dim {dim}')
    fn = lambda impl: (lambda x: bias_act.bias_act(x, act='lrelu', alpha=0.3, clamp=0.5, impl=impl))
    compare(fn, [x], gen, torch.float64, 'no bias')
    x1 = torch.randn([7], generator=gen, dtype=torch.float64)  # no bias: dim may exceed x.ndim
    fn = lambda impl: (lambda x: bias_act.bias_act(x, dim=dim + 1, act='elu', impl=impl))
    compare(fn, [x1], gen, torch.float64, 'no bias, 1-D')


# ----------------------------------------------------------------------------------------------
# gradcheck (float64, tiny) straight on the native functions

def test_native_gradcheck_and_gradgradcheck():
    gen = torch.Generator().manual_seed(11)
    x = torch.randn([1, 2, 5, 6], generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn([2], generator=gen, dtype=torch.float64, requires_grad=True)
    f1 = torch.rand(4, generator=gen)
    f2 = torch.rand(3, 4, generator=gen)
    up_fn = lambda x: functions.upfirdn2d(x, f1, up=(2, 2), down=(1, 1), padding=(2, 1, 1, 2), flip_filter=False, gain=4)
    down_fn = lambda x: functions.upfirdn2d(x, f2, up=(1, 1), down=(2, 2), padding=(1, 1, 2, 0), flip_filter=True, gain=1)
    for fn in (up_fn, down_fn):
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))
    act_fn = lambda x, b: functions.bias_act(x, b, 1, 'softplus', None, 1.5, None)
    assert torch.autograd.gradcheck(act_fn, (x, b))
    assert torch.autograd.gradgradcheck(act_fn, (x, b))
    fl_fn = lambda x, b: functions.filtered_lrelu(x, f1, f2, b, 2, 2, (2, 2, 3, 3), 1.4, 0.2, 2.0, False)
    assert torch.autograd.gradcheck(fl_fn, (x, b))
    assert torch.autograd.gradgradcheck(fl_fn, (x, b))  # piecewise linear: second derivative 0


# ----------------------------------------------------------------------------------------------
# Robustness of the calling convention

def test_threads_noncontiguous_and_half():
    gen = torch.Generator().manual_seed(4)
    f = kaiser_like(12, gen)
    x = torch.randn([4, 12, 66, 64], generator=gen).permute(0, 1, 3, 2)  # non-contiguous
    # Large enough (> 2M multiply-adds) for the kernels to use several threads.
    ref = upfirdn2d.upfirdn2d(x, f, up=2, padding=[6, 5, 6, 5], gain=4, impl='ref')
    b = torch.randn([12], generator=gen)
    before = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            outs.append(upfirdn2d.upfirdn2d(x, f, up=2, padding=[6, 5, 6, 5], gain=4, impl='native'))
            outs.append(filtered_lrelu.filtered_lrelu(x, f, f, b, up=2, down=2, padding=[9, 8, 9, 8], impl='native'))
    finally:
        torch.set_num_threads(before)
    for i in range(2, 6):  # planes are independent: the thread count changes nothing
        assert torch.equal(outs[i], outs[i % 2]), i
    assert_close(outs[0], ref, 'non-contiguous')
    xb = x.to(torch.bfloat16)
    yb = upfirdn2d.upfirdn2d(xb, f, up=2, padding=[6, 5, 6, 5], gain=4, impl='native')
    assert yb.dtype == torch.bfloat16
    assert (yb.float() - ref).abs().max() < 0.05 * ref.abs().max()


def test_concurrent_callers_share_the_helper_pool():
    """Python threads calling the native ops at once (the visualizer's render thread and UI
    thread do) post jobs to one pool of helpers; every result must equal the serial one."""
    import concurrent.futures
    gen = torch.Generator().manual_seed(9)
    f = kaiser_like(12, gen)
    inputs = [torch.randn([2, 16, 40, 40], generator=gen) for _ in range(6)]
    run = lambda x: (upfirdn2d.upfirdn2d(x, f, up=2, padding=[6, 5, 6, 5], gain=4, impl='native'),
                     filtered_lrelu.filtered_lrelu(x, f, f, None, up=2, down=2, padding=[9, 8, 9, 8], impl='native'))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        serial = [run(x) for x in inputs]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for _ in range(3):
                for got, want in zip(pool.map(run, inputs), serial):
                    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# Build cache: damaged entries are rebuilt, never loaded. `_build` is replaced by a copy of the
# already-built library, so these tests exercise the cache logic without compiling again.

@pytest.fixture
def fake_build_env(tmp_path, monkeypatch):
    """(entry dir, install_good_entry(), list of builds) in an empty temporary cache."""
    flags = build.compile_flags()
    key = build.cache_key(flags)
    name = f'stylegan_native_ops_{key}'
    good_so = build.cache_root() / f'ops-native-{key}' / f'{name}.so'
    if not good_so.is_file():
        pytest.skip('built library not in the default cache')
    entry = tmp_path / f'ops-native-{key}'
    builds = []

    def install(path):
        tmp = tmp_path / 'staging'
        tmp.mkdir()
        (tmp / f'{name}.so').write_bytes(good_so.read_bytes())
        (tmp / build._MARKER).write_text(json.dumps({'key': key, 'sha256': build._sha256(good_so)}))
        tmp.rename(path)

    def fake_build(root, entry_, name_, key_, flags_):
        assert (root, entry_, name_, key_) == (tmp_path, entry, name, key)
        assert not entry_.exists(), 'a damaged entry must be removed before building'
        builds.append(entry_)
        install(entry_)
        return build._open_library(entry_ / f'{name_}.so')

    monkeypatch.setenv('STYLEGAN_CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(build, '_build', fake_build)
    return entry, lambda: install(entry), builds


def test_complete_cache_entry_is_used_without_building(fake_build_env):
    entry, install, builds = fake_build_env
    install()
    assert build.load().sg_abi_version() == build.ABI_VERSION
    assert builds == []


# Damage is done before this process ever loads the entry's library (a library that is already
# mapped must not be overwritten, and dlopen would return the loaded copy anyway).
@pytest.mark.parametrize('damage', ['truncated_so', 'missing_so', 'no_marker', 'wrong_marker', 'garbage_marker'])
def test_damaged_cache_entry_is_rebuilt(fake_build_env, damage):
    entry, install, builds = fake_build_env
    install()
    so = next(entry.glob('*.so'))
    marker = entry / build._MARKER
    if damage == 'truncated_so':
        so.write_bytes(so.read_bytes()[:1000])
    elif damage == 'missing_so':
        so.unlink()
    elif damage == 'no_marker':
        marker.unlink()
    elif damage == 'wrong_marker':
        marker.write_text('{"key": "0000"}')
    else:
        marker.write_text('{not json')
    lib = build.load()
    assert builds == [entry], 'the damaged entry must be rebuilt'
    assert lib.sg_abi_version() == build.ABI_VERSION
    build.load()
    assert len(builds) == 1  # and then reused


def test_leftovers_of_an_interrupted_build_are_ignored_and_removed(fake_build_env):
    entry, install, builds = fake_build_env
    stale = entry.parent / f'{entry.name}.tmp-killed'
    stale.mkdir(parents=True)
    (stale / 'half.o').write_bytes(b'\0' * 10)
    build.load()
    assert builds == [entry] and not stale.exists()


def test_only_exactly_separable_2d_filters_run_separably():
    """SG2's 2-D binomial filter is an exact outer product and runs as two 1-D passes;
    a generic 2-D filter must stay 2-D."""
    binom = upfirdn2d.setup_filter([1, 3, 3, 1]).double().numpy()
    col, row = functions._exact_rank1_factors(binom)
    assert abs(np.outer(col, row) - binom).max() < 1e-15
    assert functions._exact_rank1_factors(np.random.RandomState(0).rand(4, 4)) is None
    nearly = binom.copy()
    nearly[0, 0] += 1e-9
    assert functions._exact_rank1_factors(nearly) is None


def test_failed_march_native_build_retries_portable(monkeypatch):
    attempts = []

    def fake_load_with(flags):
        attempts.append(flags)
        if '-march=native' in flags:
            raise build.NativeBuildError('unknown flag -march=native')
        return 'portable library'

    monkeypatch.delenv(build.PORTABLE_ENV, raising=False)
    monkeypatch.delenv(build.NO_NATIVE_ENV, raising=False)
    monkeypatch.setattr(build, '_load_with', fake_load_with)
    assert build.load() == 'portable library'
    assert ['-march=native' in f for f in attempts] == [True, False]


def test_forked_child_runs_native_ops_after_the_parent_used_helpers():
    """A DataLoader worker forked from a process whose helper threads exist must not hang."""
    import multiprocessing
    gen = torch.Generator().manual_seed(10)
    f = kaiser_like(12, gen)
    x = torch.randn([2, 16, 40, 40], generator=gen)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        want = upfirdn2d.upfirdn2d(x, f, up=2, padding=[6, 5, 6, 5], gain=4, impl='native')  # starts helpers
        ctx = multiprocessing.get_context('fork')
        with ctx.Pool(1) as pool:
            got = pool.apply_async(_upfirdn_in_child, (x, f)).get(timeout=60)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(got, want.numpy())


def _upfirdn_in_child(x, f):
    torch.set_num_threads(2)
    y = upfirdn2d.upfirdn2d(x, f, up=2, padding=[6, 5, 6, 5], gain=4, impl='native')
    # Returned as numpy: sending a torch tensor back copies it with torch's OpenMP threads,
    # which hang in a child forked after other Python threads used them (a libgomp limit).
    return y.numpy()


@pytest.mark.parametrize('down,padding', [((1, 1), [1, 2, 2, 1]), ((2, 2), [1, 1, 1, 1]),
                                          ((2, 1), [0, 3, 2, 0]), ((1, 2), [2, 1, 0, 0])])
@pytest.mark.parametrize('shape', [(3, 50, 20, 23), (1, 20, 100, 90)])
def test_many_small_planes_match_ref(down, padding, shape):
    """Planes without up-sampling take the flat multi-plane kernel (FlatPlanes in upfirdn2d.cpp)
    up to 64x64, or 136x136 without down-sampling: 150 planes of 20x23 span two plane groups of
    its buffer, 20 planes of 100x90 four (or the row-wise kernel when down-sampling)."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(list(shape), generator=gen, dtype=torch.float64)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    f2d = torch.outer(f, f) / 64    # exactly separable: runs separably, as StyleGAN2's filters
    for filt in (f / 8, f2d):
        want = upfirdn2d.upfirdn2d(x, filt, down=down, padding=padding, gain=1.5, impl='ref')
        got = functions._upfirdn2d_raw(x, functions._correlation_taps(filt, False, 1.5, x.dtype),
                                       (1, 1), down, tuple(padding))
        assert_close(got, want, f'down {down} padding {padding}')
