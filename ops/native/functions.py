"""Differentiable native CPU ops: autograd wrappers around the C kernels in ops/native/*.cpp.

The public ops (ops/upfirdn2d.py, ops/filtered_lrelu.py, ops/bias_act.py) validate and normalise
their arguments and call these functions for CPU tensors. Semantics are exactly those of the
reference backend (DESIGN.md section 5); only the speed differs.

Gradients
* upfirdn2d is linear in x; its adjoint is again an upfirdn2d (up and down swapped, filter
  flipped, padding adjusted), so the backward calls the same autograd Function and gradients of
  any order work.
* filtered_lrelu saves, at the upsampled resolution, a uint8 code per sample saying whether the
  leaky ReLU took its positive or negative branch or the clamp was active (1 byte instead of
  recomputing the whole upsampling in the backward pass). The backward is then
  up_adjoint(code_scale * down_adjoint(dy)), run as one fused native pass like the forward; it
  is linear in dy and its own adjoint is built from differentiable Functions, so double
  backward works as well (the activation's second derivative is 0).
* bias_act's backward is another native Function (first derivative); its own backward uses the
  native second derivative. Gradients up to second order (R1 / path-length regularisation) are
  exact; a third-order gradient would treat the second derivative as constant.
Filters and padding are constants: no gradient flows to them.
"""

import array
import math
import weakref

import numpy as np
import torch

from ops import backend

_DTYPES = {torch.float32: 'f32', torch.float64: 'f64'}
_ACT_CODES = {'linear': 0, 'relu': 1, 'lrelu': 2, 'tanh': 3, 'sigmoid': 4, 'elu': 5, 'selu': 6,
              'softplus': 7, 'swish': 8}
_ACT_DEFAULTS = {  # (alpha, gain) when the caller passes None; as the reference
    'linear': (0.0, 1.0), 'relu': (0.0, math.sqrt(2)), 'lrelu': (0.2, math.sqrt(2)),
    'tanh': (0.0, 1.0), 'sigmoid': (0.0, 1.0), 'elu': (0.0, 1.0), 'selu': (0.0, 1.0),
    'softplus': (0.0, 1.0), 'swish': (0.0, math.sqrt(2))}
_LINEAR_PIECEWISE = ('linear', 'relu', 'lrelu')  # second derivative identically zero


# ----------------------------------------------------------------------------------------------
# Public entry points (called by the ops after validation).

def upfirdn2d(x, f, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0), flip_filter=False, gain=1):
    """Native upfirdn2d of x [N, C, H, W]; f: 1-D (separable), 2-D [fh, fw] or None."""
    x, restore = _as_native_dtype(x)
    taps = _correlation_taps(f, flip_filter, gain, x.dtype)
    args = (taps, _pair(up), _pair(down), _padding4(padding))
    y = _UpFirDn2d.apply(x, *args) if _needs_graph(x) else _upfirdn2d_raw(x, *args)
    return restore(y)


def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=(0, 0, 0, 0),
                   gain=math.sqrt(2), slope=0.2, clamp=None, flip_filter=False):
    """Fused bias + upsample(fu) + leaky ReLU * gain + clamp + downsample(fd) of x [N, C, H, W]."""
    x, restore = _as_native_dtype(x)
    up, down = int(up), int(down)
    # The upsampling filter carries the zero-insertion gain up**2 (as the reference).
    fu_taps = _correlation_taps(fu, flip_filter, up * up, x.dtype)
    fd_taps = _correlation_taps(fd, flip_filter, 1, x.dtype)
    if b is not None:
        b = b.to(x.dtype)
    params = (up, down, _padding4(padding), float(gain), float(slope),
              -1.0 if clamp is None else float(clamp))
    if _needs_graph(x, b):
        y = _FilteredLrelu.apply(x, b, fu_taps, fd_taps, params)
    else:
        y, _ = _filtered_lrelu_raw(x, b, fu_taps, fd_taps, params, want_mask=False)
    return restore(y)


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
    """Native y = clamp(act(x + b along dim, alpha) * gain)."""
    if act not in _ACT_CODES:
        raise ValueError(f'act must be one of {sorted(_ACT_CODES)}, got {act!r}.')
    x, restore = _as_native_dtype(x)
    def_alpha, def_gain = _ACT_DEFAULTS[act]
    spec = _BiasActSpec(dim=int(dim), act=act,
                        alpha=def_alpha if alpha is None else float(alpha),
                        gain=def_gain if gain is None else float(gain),
                        clamp=-1.0 if clamp is None else float(clamp))
    if b is not None:
        b = b.to(x.dtype)
    if _needs_graph(x, b):
        return restore(_BiasAct.apply(x, b, spec))
    return restore(_bias_act_raw(x, b, None, spec, order=0))


# ----------------------------------------------------------------------------------------------
# Helpers.

def _needs_graph(*tensors) -> bool:
    """Whether autograd must record the op (else skip the Function machinery: inference)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _lib():
    return backend.native_module()


_KERNELS: dict = {}


def _kernel(op: str, dtype):
    """The C entry point of `op` for `dtype` (looked up once: ctypes attribute access and the
    name formatting cost ~1 us per call, a tenth of a small op)."""
    fn = _KERNELS.get((op, dtype))
    if fn is None:
        fn = _KERNELS[(op, dtype)] = getattr(_lib(), f'sg_{op}_{_DTYPES[dtype]}')
    return fn


def _threads() -> int:
    return max(1, torch.get_num_threads())


def _as_native_dtype(x):
    """The kernels exist for float32/float64; other float dtypes compute in float32."""
    if not x.is_cpu:
        raise ValueError(f'the native ops backend runs on CPU only, got a tensor on {x.device}.')
    if x.dtype in _DTYPES:
        return x, lambda y: y
    if not x.dtype.is_floating_point:
        raise ValueError(f'x must be a floating point tensor, got {x.dtype}.')
    dtype = x.dtype
    return x.float(), lambda y: y.to(dtype)


def _pair(v):
    if type(v) is tuple and len(v) == 2:
        return v  # already normalised by ops/_validate.py (the usual caller)
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


def _padding4(p):
    if type(p) is tuple and len(p) == 4:
        return p
    if isinstance(p, (int, float)):
        return (int(p),) * 4
    p = [int(v) for v in p]
    return tuple(p * 2) if len(p) == 2 else tuple(p)


def _ptr(t):
    return None if t is None else t.data_ptr()


def _check(status: int, op: str) -> None:
    if status == 1:
        raise ValueError(f'native {op}: inconsistent geometry (padding/filter/size).')
    if status != 0:
        raise RuntimeError(f'native {op} failed inside the C++ kernel (out of memory?).')


class _Taps:
    """Correlation taps with the gain folded in: separable (x, y 1-D) or 2-D (x only, [fh, fw])."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None):
        self.x, self.y = x.contiguous(), None if y is None else y.contiguous()
        # (taps along width, taps along height); fixed, and read on every call
        self.size = (self.x.shape[1], self.x.shape[0]) if self.y is None else (self.x.numel(), self.y.numel())
        self.x_ptr, self.y_ptr = _ptr(self.x), _ptr(self.y)
        self._args = (self.x_ptr, self.size[0], self.y_ptr, self.size[1])

    def flipped(self) -> '_Taps':
        """Taps of the adjoint operator (correlation <-> convolution)."""
        return _Taps(self.x.flip(list(range(self.x.ndim))), None if self.y is None else self.y.flip(0))

    def args(self):
        """(x taps ptr, kx, y taps ptr or NULL for 2-D, ky) as the C API takes them."""
        return self._args


# Taps of persistent filters (module buffers), keyed by the filter's id and checked against a
# weak reference and the tensor's version counter, so a freed or modified filter never hits.
# Preparing taps costs ~25 us, a fifth of filtering StyleGAN2's [512, 16, 16] maps.
_TAPS_CACHE: dict = {}
_TAPS_CACHE_SIZE = 256


def _correlation_taps(f, flip_filter: bool, gain: float, dtype) -> _Taps:
    """Kernel taps of filter f (cached per filter tensor, flip, gain and dtype)."""
    if f is None or f.requires_grad or f.is_inference():  # inference tensors have no version counter
        return _make_taps(f, flip_filter, gain, dtype)
    key = (id(f), bool(flip_filter), float(gain), dtype)
    entry = _TAPS_CACHE.get(key)
    if entry is not None and entry[0]() is f and entry[1] == f._version:
        return entry[2]
    taps = _make_taps(f, flip_filter, gain, dtype)
    if len(_TAPS_CACHE) >= _TAPS_CACHE_SIZE:
        _TAPS_CACHE.clear()   # filters made per call would otherwise accumulate
    _TAPS_CACHE[key] = (weakref.ref(f), f._version, taps)
    return taps


def _make_taps(f, flip_filter: bool, gain: float, dtype) -> _Taps:
    """Kernel taps of filter f. Prepared with numpy: filters are tiny, and a dozen torch calls
    on them would cost more than filtering a small feature map."""
    a = np.ones(1) if f is None else f.detach().cpu().numpy().astype(np.float64)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f'filter must be a non-empty 1-D or 2-D tensor, got shape {list(a.shape)}.')
    if not flip_filter:  # flip_filter=False is a true convolution; the kernels correlate
        a = a[::-1, ::-1] if a.ndim == 2 else a[::-1]
    as_tensor = lambda v: torch.from_numpy(v.copy()).to(dtype)  # copy: no negative strides
    if a.ndim == 2:
        factors = _exact_rank1_factors(a)
        if factors is None:
            return _Taps(as_tensor(a * gain), None)
        col, a = factors
        return _Taps(as_tensor(a * gain), as_tensor(col))
    return _Taps(as_tensor(a * gain), as_tensor(a))  # separable: the whole gain on the x pass


def _exact_rank1_factors(f, rel_tol=1e-12):
    """(column, row) with f == outer(column, row) to float64 precision, or None.

    StyleGAN2's 2-D resampling filters (setup_filter([1, 3, 3, 1])) are outer products of a 1-D
    filter; run separably they need 2k instead of k*k multiply-adds per sample. Only an exact
    factorisation is used, so the result still matches the 2-D definition to rounding.
    """
    g = np.asarray(f, dtype=np.float64)
    if min(g.shape) < 2:
        return None
    i, j = np.unravel_index(np.abs(g).argmax(), g.shape)
    if g[i, j] == 0:
        return None
    col, row = g[:, j], g[i, :] / g[i, j]
    if np.abs(np.outer(col, row) - g).max() > rel_tol * np.abs(g).max():
        return None
    return col, row


def _out_len(n, up, down, p0, p1, taps):
    return (n * up + p0 + p1 - taps + down) // down


def _adjoint_geometry(in_hw, out_hw, taps: _Taps, up, down, pad):
    """Padding of the upfirdn2d that computes the adjoint (input gradient) of the given one.

    Per axis, forward y[o] = sum_s x[s] g[up*s + p0 - o*down]; the adjoint is an upfirdn2d
    with up/down swapped, the taps reversed, q0 = taps - 1 - p0 and q1 chosen so that the
    output has exactly the input's length.
    """
    (h, w), (oh, ow) = in_hw, out_hw
    kx, ky = taps.size
    qx0, qy0 = kx - 1 - pad[0], ky - 1 - pad[2]
    qx1 = w * up[0] - ow * down[0] + pad[0] - up[0] + 1
    qy1 = h * up[1] - oh * down[1] + pad[2] - up[1] + 1
    return (qx0, qx1, qy0, qy1)


def _upfirdn2d_raw(x, taps: _Taps, up, down, pad):
    x = x.contiguous()
    n, c, h, w = x.shape
    kx, ky = taps.size
    oh = _out_len(h, up[1], down[1], pad[2], pad[3], ky)
    ow = _out_len(w, up[0], down[0], pad[0], pad[1], kx)
    if oh < 1 or ow < 1:
        raise ValueError(f'upfirdn2d: padding {list(pad)} leaves an empty output for input {h}x{w}.')
    y = torch.empty([n, c, oh, ow], dtype=x.dtype)
    if n * c == 0:
        return y
    geometry = array.array('q', (n * c, h, w, kx, ky, *up, *down, *pad, oh, ow))
    _check(_kernel('upfirdn2d', x.dtype)(x.data_ptr(), y.data_ptr(), taps.x_ptr, taps.y_ptr,
                                         geometry.buffer_info()[0], _threads()), 'upfirdn2d')
    return y


# ----------------------------------------------------------------------------------------------
# upfirdn2d.

class _UpFirDn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, taps, up, down, pad):
        y = _upfirdn2d_raw(x, taps, up, down, pad)
        ctx.geometry = (taps, up, down, pad, tuple(x.shape[2:]), tuple(y.shape[2:]))
        return y

    @staticmethod
    def backward(ctx, dy):
        taps, up, down, pad, in_hw, out_hw = ctx.geometry
        adj_pad = _adjoint_geometry(in_hw, out_hw, taps, up, down, pad)
        dx = _UpFirDn2d.apply(dy, taps.flipped(), down, up, adj_pad)  # differentiable again
        return dx, None, None, None, None


# ----------------------------------------------------------------------------------------------
# filtered_lrelu.

def _filtered_lrelu_raw(x, b, fu: _Taps, fd: _Taps, params, want_mask: bool):
    """(y, mask or None); mask is the uint8 activation code at the upsampled resolution."""
    up, down, pad, gain, slope, clamp = params
    x = x.contiguous()
    n, c, h, w = x.shape
    (kux, kuy), (kdx, kdy) = fu.size, fd.size
    mh, mw = _out_len(h, up, 1, pad[2], pad[3], kuy), _out_len(w, up, 1, pad[0], pad[1], kux)
    oh, ow = _out_len(mh, 1, down, 0, 0, kdy), _out_len(mw, 1, down, 0, 0, kdx)
    if min(mh, mw, oh, ow) < 1:
        raise ValueError(f'filtered_lrelu: padding {list(pad)} leaves an empty output for input {h}x{w}.')
    y = torch.empty([n, c, oh, ow], dtype=x.dtype)
    mask = torch.empty([n, c, mh, mw], dtype=torch.uint8) if want_mask else None
    if y.numel() > 0:
        fn = _kernel('filtered_lrelu', x.dtype)
        b = None if b is None else b.contiguous()
        _check(fn(_ptr(x), _ptr(b), _ptr(y), _ptr(mask), n, c, h, w, *fu.args(), *fd.args(),
                  up, down, *pad, gain, slope, clamp, mh, mw, oh, ow, _threads()), 'filtered_lrelu')
    return y, mask


class _FilteredLrelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, fu: _Taps, fd: _Taps, params):
        y, mask = _filtered_lrelu_raw(x, b, fu, fd, params, want_mask=any(ctx.needs_input_grad[:2]))
        ctx.saved = (mask, fu, fd, params, tuple(x.shape[2:]), tuple(mask.shape[2:]) if mask is not None else None,
                     tuple(y.shape[2:]), b is not None)
        return y

    @staticmethod
    def backward(ctx, dy):
        mask, fu, fd, params, in_hw, mid_hw, out_hw, has_b = ctx.saved
        geometry = _GradGeometry(fu, fd, params, in_hw, mid_hw, out_hw)
        dx = _FilteredLreluGrad.apply(dy, mask, geometry)
        db = dx.sum(dim=[0, 2, 3]) if has_b and ctx.needs_input_grad[1] else None
        return dx, db, None, None, None


class _GradGeometry:
    """The two linear stages of filtered_lrelu's input gradient,
    dx = up^T( act'(mask) * down^T(dy) ): taps and padding of both adjoints."""

    def __init__(self, fu: _Taps, fd: _Taps, params, in_hw, mid_hw, out_hw):
        up, down, pad, self.gain, self.slope, _ = params
        self.up, self.down, self.pad, self.fu, self.fd = up, down, pad, fu, fd
        self.in_hw, self.mid_hw = in_hw, mid_hw
        self.d_pad = _adjoint_geometry(mid_hw, out_hw, fd, (1, 1), (down, down), (0, 0, 0, 0))
        self.u_pad = _adjoint_geometry(in_hw, mid_hw, fu, (up, up), (1, 1), pad)
        self.fd_adj, self.fu_adj = fd.flipped(), fu.flipped()


class _FilteredLreluGrad(torch.autograd.Function):
    """dx = up^T( act'(mask) * down^T(dy) ) in one fused native pass (like the forward, the
    [N, C, mh, mw] intermediate never exists in full). Linear in dy; its adjoint,
    down( act'(mask) * up(ddx) ), is built from differentiable Functions, so double backward
    works (the activation's second derivative is 0)."""

    @staticmethod
    def forward(ctx, dy, mask, g: _GradGeometry):
        ctx.saved = (mask, g)
        dy = dy.contiguous()
        n, c, h, w = dy.shape
        (mh, mw), (ih, iw) = g.mid_hw, g.in_hw
        dx = torch.empty([n, c, ih, iw], dtype=dy.dtype)
        if dx.numel() > 0:
            fn = _kernel('filtered_lrelu_grad', dy.dtype)
            _check(fn(_ptr(dy), _ptr(mask), _ptr(dx), n, c, h, w, *g.fd_adj.args(), g.down, *g.d_pad, mh, mw,
                      *g.fu_adj.args(), g.up, *g.u_pad, ih, iw, g.gain, g.slope, _threads()),
                   'filtered_lrelu backward')
        return dx

    @staticmethod
    def backward(ctx, ddx):
        mask, g = ctx.saved
        mid = _UpFirDn2d.apply(ddx, g.fu, (g.up, g.up), (1, 1), g.pad)
        mid = _MaskScale.apply(mid, mask, g.gain, g.slope)
        ddy = _UpFirDn2d.apply(mid, g.fd, (1, 1), (g.down, g.down), (0, 0, 0, 0))
        return ddy, None, None


class _MaskScale(torch.autograd.Function):
    """g * {0, gain, gain*slope}[code]: the derivative of leaky ReLU * gain + clamp (diagonal,
    so it is its own adjoint)."""

    @staticmethod
    def forward(ctx, g, mask, gain, slope):
        g = g.contiguous()
        out = torch.empty_like(g)
        fn = _kernel('mask_scale', g.dtype)
        _check(fn(_ptr(g), _ptr(mask), _ptr(out), g.numel(), gain, slope, _threads()), 'filtered_lrelu backward')
        ctx.saved = (mask, gain, slope)
        return out

    @staticmethod
    def backward(ctx, dout):
        mask, gain, slope = ctx.saved
        return _MaskScale.apply(dout, mask, gain, slope), None, None, None


# ----------------------------------------------------------------------------------------------
# bias_act.

class _BiasActSpec:
    __slots__ = ('dim', 'act', 'alpha', 'gain', 'clamp')

    def __init__(self, dim, act, alpha, gain, clamp):
        self.dim, self.act, self.alpha, self.gain, self.clamp = dim, act, alpha, gain, clamp


def _bias_act_raw(x, b, g, spec: _BiasActSpec, order: int):
    """order 0: the activation; 1 / 2: g times its first / second derivative (0 where clamped)."""
    x = x.contiguous()
    if b is None:  # no bias: `dim` is irrelevant (and may even exceed x.ndim)
        outer, channels, inner = 1, 1, x.numel()
    else:
        outer, channels, inner = math.prod(x.shape[:spec.dim]), x.shape[spec.dim], math.prod(x.shape[spec.dim + 1:])
    y = torch.empty_like(x)
    if x.numel() == 0:
        return y
    g = None if g is None else g.contiguous()
    b = None if b is None else b.contiguous()
    fn = _kernel('bias_act', x.dtype)
    _check(fn(_ptr(x), _ptr(b), _ptr(g), _ptr(y), outer, channels, inner, _ACT_CODES[spec.act],
              spec.alpha, spec.gain, spec.clamp, order, _threads()), 'bias_act')
    return y


def _reduce_to_bias(t, dim):
    return t.sum(dim=[d for d in range(t.ndim) if d != dim])


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, spec):
        ctx.save_for_backward(x, b)
        ctx.spec = spec
        return _bias_act_raw(x, b, None, spec, order=0)

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        dx = _BiasActGrad.apply(dy, x, b, ctx.spec)
        db = _reduce_to_bias(dx, ctx.spec.dim) if b is not None and ctx.needs_input_grad[1] else None
        return dx, db, None


class _BiasActGrad(torch.autograd.Function):
    """dx = dy * gain * act'(x + b) (0 where clamped); differentiable once more for R1."""

    @staticmethod
    def forward(ctx, dy, x, b, spec):
        ctx.save_for_backward(dy, x, b)
        ctx.spec = spec
        return _bias_act_raw(x, b, dy, spec, order=1)

    @staticmethod
    def backward(ctx, ddx):
        dy, x, b = ctx.saved_tensors
        spec = ctx.spec
        d_dy = _BiasActGrad.apply(ddx, x, b, spec) if ctx.needs_input_grad[0] else None
        d_x = d_b = None
        if spec.act not in _LINEAR_PIECEWISE and any(ctx.needs_input_grad[1:3]):
            d_x = _bias_act_raw(x, b, ddx * dy, spec, order=2)
            if b is not None and ctx.needs_input_grad[2]:
                d_b = _reduce_to_bias(d_x, spec.dim)
        return d_dy, d_x, d_b, None


# ----------------------------------------------------------------------------------------------
# Winograd F(4x4, 3x3) convolution (see ops/conv2d_winograd.py).

def empty_huge(shape, dtype) -> torch.Tensor:
    """torch.empty whose pages, if it is large (>= 32 MB, a fresh mmap; the C side decides),
    fault in as 2 MB pages (ops/native/memory.h): for buffers torch itself writes, e.g. a
    matmul's `out`."""
    t = torch.empty(shape, dtype=dtype)
    _lib().sg_advise_huge_pages(t.data_ptr(), t.numel() * t.element_size())
    return t


def winograd_conv3x3(x, u, padding: int, groups: int, in_scale=None, out_scale=None):
    """out_scale * conv2d(in_scale * x, w) of x [N, groups * I, H, W] with the 3x3 filters w whose
    transform is u [36, groups * O, I]; the optional scales [N, groups * I] / [N, groups * O]
    are applied inside the transforms (no extra pass over x or y)."""
    x = x.contiguous()
    in_scale = None if in_scale is None else in_scale.to(x.dtype).contiguous()
    out_scale = None if out_scale is None else out_scale.to(x.dtype).contiguous()
    for name, scale, channels in (('in_scale', in_scale, x.shape[1]), ('out_scale', out_scale, u.shape[1])):
        if scale is not None and scale.numel() != x.shape[0] * channels:
            raise ValueError(f'{name} must have {x.shape[0]} x {channels} entries, got shape {list(scale.shape)}.')
    batch, cin, h, w = x.shape
    cout = u.shape[1]
    oh, ow = h + 2 * padding - 2, w + 2 * padding - 2
    tiles = (-(-oh // 4), -(-ow // 4))
    y = torch.empty([batch, cout, oh, ow], dtype=x.dtype)
    # The transformed tiles are 2.25x an image's samples, for input and output alike: run the
    # batch in chunks whose buffers stay below ~256 MB each (a 512-channel 148 px layer at batch
    # 8 would otherwise hold 1.7 GB at once).
    per_image = 36 * max(cin, cout) * tiles[0] * tiles[1] * x.element_size()
    chunk = max(1, _WINOGRAD_CHUNK_BYTES // per_image)
    for b in range(0, batch, chunk):
        e = min(batch, b + chunk)
        _winograd_chunk(x[b:e], u, padding, groups, tiles, y[b:e],
                        None if in_scale is None else in_scale.view(batch, -1)[b:e],
                        None if out_scale is None else out_scale.view(batch, -1)[b:e])
    return y


_WINOGRAD_CHUNK_BYTES = 256 << 20


def _winograd_chunk(x, u, padding, groups, tiles, y, in_scale, out_scale):
    """The Winograd convolution of the images x into y (contiguous slices of the batch)."""
    batch, cin, h, w = x.shape
    _, cout, oh, ow = y.shape
    cin_g = u.shape[2]
    cols = batch * tiles[0] * tiles[1]                    # matmul columns: every tile of every image
    v = torch.empty([36, cin, cols], dtype=x.dtype)
    geometry = array.array('q', (batch, cin, h, w, padding, *tiles))  # alive during the call
    _check(_kernel('winograd_input', x.dtype)(x.data_ptr(), _ptr(in_scale), v.data_ptr(),
                                              geometry.buffer_info()[0], _threads()), 'conv2d (winograd input)')
    # The 36 * groups products [O, I] @ [I, tiles], summed over input channels by the matmul.
    m = empty_huge([36, groups, cout // groups, cols], x.dtype)
    torch.matmul(u.view(36, groups, cout // groups, cin_g), v.view(36, groups, cin_g, cols), out=m)
    del v
    geometry = array.array('q', (batch, cout, oh, ow, *tiles))
    _check(_kernel('winograd_output', x.dtype)(m.data_ptr(), _ptr(out_scale), y.data_ptr(),
                                               geometry.buffer_info()[0], _threads()), 'conv2d (winograd output)')
