"""Average 2-D power spectra of image sets (StyleGAN3 paper, section 2 and Figure 2/13 analysis).

Images are normalised by the dataset's pixel mean/std, multiplied by a separable Kaiser window
to suppress the leakage of the image border, zero-padded by an interpolation factor (a finer
frequency grid) and transformed with an FFT. Power is averaged over channels and images.
"""

import numpy as np
import torch


def kaiser_window_2d(height: int, width: int, beta: float) -> torch.Tensor:
    """Separable Kaiser window scaled to unit mean energy, so windowing keeps the power level."""
    wy = torch.from_numpy(np.kaiser(height, beta)).float()
    wx = torch.from_numpy(np.kaiser(width, beta)).float()
    window = wy[:, None] * wx[None, :]                                   # [H, W]
    return window / window.square().mean().sqrt()


def power_spectrum(images: torch.Tensor, mean: float = 0.0, std: float = 1.0,
                   beta: float = 8.0, interp: int = 1) -> torch.Tensor:
    """Average power spectrum of float images [N, C, H, W] -> [H*interp, W*interp], DC centred."""
    if images.ndim != 4:
        raise ValueError(f'images must be [N, C, H, W], got shape {tuple(images.shape)}.')
    if interp < 1:
        raise ValueError(f'interp must be >= 1, got {interp}.')
    n, c, h, w = images.shape
    x = (images.float() - mean) / std
    x = x * kaiser_window_2d(h, w, beta).to(x.device)
    spec = torch.fft.fftn(x, s=(h * interp, w * interp), dim=(2, 3))     # [N, C, H', W']
    power = spec.abs().square() / (h * w)
    return torch.fft.fftshift(power.mean(dim=(0, 1)), dim=(0, 1)).cpu()


class SpectrumAccumulator:
    """Running mean of power spectra over batches, so any number of images fits in memory."""

    def __init__(self, mean=0.0, std=1.0, beta=8.0, interp=1):
        self.kwargs = dict(mean=mean, std=std, beta=beta, interp=interp)
        self.total = None
        self.count = 0

    def add(self, images: torch.Tensor):
        batch = power_spectrum(images, **self.kwargs).double() * len(images)
        self.total = batch if self.total is None else self.total + batch
        self.count += len(images)

    def result(self) -> np.ndarray:
        if self.count == 0:
            raise ValueError('no images were added to the spectrum.')
        return (self.total / self.count).numpy()


def to_db(power: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    return 10 * np.log10(np.maximum(power, floor))


def spectrum_slices(power: np.ndarray) -> dict:
    """1-D slices from DC outwards: horizontal and diagonal, with frequencies in cycles/pixel.

    `power` is centred (fftshift) with size [H*interp, W*interp]; frequencies are scaled back
    to the original pixel grid, so 0.5 is the Nyquist frequency of the images.
    """
    h, w = power.shape
    cy, cx = h // 2, w // 2
    n = min(h, w) // 2
    horizontal = power[cy, cx:cx + n]
    diagonal = power[np.arange(cy, cy + n), np.arange(cx, cx + n)]
    # Zero padding refines the frequency grid but keeps the unit: bin k of a w-point FFT over
    # original pixels is k / w cycles per pixel.
    freqs = np.arange(n) / w
    return {'freq': freqs, 'horizontal': horizontal,
            'freq_diagonal': freqs * np.sqrt(2), 'diagonal': diagonal}
