"""Low-pass FIR filter design for the alias-free StyleGAN3 layers.

StyleGAN3 (Karras et al. 2021, section 3.2 and appendix C) uses Kaiser-windowed low-pass
filters: a separable windowed sinc for the translation-equivariant config (-T) and, for the
rotation-equivariant config (-R), a radially symmetric windowed jinc for downsampling.
A filter is described by its number of taps, the cutoff f_c, the transition band width
(2 * f_h, the stopband f_t = f_c + f_h) and the sampling rate s, all in the same units.

The attenuation/beta formulas are Kaiser's empirical design rules for the window method (see
Oppenheim & Schafer, "Discrete-Time Signal Processing", Kaiser window filter design);
`kaiser_lowpass` reproduces scipy.signal.firwin(numtaps, cutoff,
width=width, fs=fs) (window method, normalised to unit DC gain).
"""

import math

import torch


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Stopband attenuation A in dB reached by `numtaps` taps with a transition `width`
    given as a fraction of the Nyquist rate (Kaiser's empirical N = (A - 7.95) / (2.285 dw))."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """Kaiser window shape parameter beta for a stopband attenuation in dB."""
    a = attenuation
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def kaiser_window(numtaps: int, beta: float) -> torch.Tensor:
    """w[n] = I0(beta * sqrt(1 - (2n / (M - 1) - 1)^2)) / I0(beta), float64."""
    if numtaps == 1:
        return torch.ones(1, dtype=torch.float64)
    n = torch.arange(numtaps, dtype=torch.float64)
    t = 2 * n / (numtaps - 1) - 1
    arg = beta * torch.sqrt((1 - t * t).clamp(min=0))
    return torch.special.i0(arg) / torch.special.i0(torch.tensor(beta, dtype=torch.float64))


def _window_for(numtaps: int, width: float, fs: float) -> torch.Tensor:
    nyquist = fs / 2
    beta = kaiser_beta(kaiser_attenuation(numtaps, width / nyquist))
    return kaiser_window(numtaps, beta)


def _check(numtaps, cutoff, width, fs):
    if isinstance(numtaps, bool) or not isinstance(numtaps, int) or numtaps < 1:
        raise ValueError(f'numtaps must be a positive integer, got {numtaps!r}.')
    if not fs > 0:
        raise ValueError(f'fs must be positive, got {fs!r}.')
    if not 0 < cutoff < fs / 2:
        raise ValueError(f'cutoff must lie in (0, fs/2) = (0, {fs / 2}), got {cutoff!r}.')
    if not width > 0:
        raise ValueError(f'width must be positive, got {width!r}.')


def bessel_j1(z: torch.Tensor, points: int = 256) -> torch.Tensor:
    """Bessel function of the first kind, order 1, in float64 for |z| up to ~100.

    Bessel's integral J1(z) = 1/pi * int_0^pi cos(t - z sin t) dt has a smooth, even, periodic
    integrand, so the trapezoidal rule converges exponentially; 256 points give full float64
    accuracy here (torch.special.bessel_j1 is only accurate to ~5e-7 for z > 5).
    """
    t = torch.linspace(0, math.pi, points + 1, dtype=torch.float64)   # [P+1]
    weights = torch.full_like(t, math.pi / points)
    weights[0] = weights[-1] = math.pi / points / 2
    integrand = torch.cos(t - z.to(torch.float64)[..., None] * torch.sin(t))  # [..., P+1]
    return (integrand * weights).sum(-1) / math.pi


def _tap_positions(numtaps: int) -> torch.Tensor:
    """Tap positions in samples, centred on the middle of the filter."""
    return torch.arange(numtaps, dtype=torch.float64) - (numtaps - 1) / 2


def kaiser_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> torch.Tensor:
    """1-D Kaiser-windowed sinc low-pass (float64, sums to 1), as scipy.signal.firwin."""
    _check(numtaps, cutoff, width, fs)
    c = cutoff / (fs / 2)                                  # cutoff as a fraction of Nyquist
    m = _tap_positions(numtaps)
    h = c * torch.sinc(c * m)                              # ideal low-pass impulse response
    h = h * _window_for(numtaps, width, fs)
    return h / h.sum()                                     # unit gain at DC


def jinc_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> torch.Tensor:
    """2-D radially symmetric low-pass [numtaps, numtaps] (float64, sums to 1).

    The ideal radial low-pass with cutoff f_c has impulse response J1(2 pi f_c r) / (pi r)
    (the "jinc"); it is windowed by the outer product of 1-D Kaiser windows. StyleGAN3-R uses it
    for the downsampling filters of its non-critically-sampled layers (rotation equivariance).
    """
    _check(numtaps, cutoff, width, fs)
    x = _tap_positions(numtaps) / fs                       # tap positions in output units
    r = torch.hypot(x[:, None], x[None, :])                # [numtaps, numtaps]
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    f = bessel_j1(2 * math.pi * cutoff * safe_r) / (math.pi * safe_r)
    f = torch.where(r > 0, f, torch.full_like(f, cutoff))  # limit r -> 0 of the jinc is f_c
    w = _window_for(numtaps, width, fs)
    f = f * torch.outer(w, w)
    return f / f.sum()
