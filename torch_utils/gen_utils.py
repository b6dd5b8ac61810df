"""Small image-generation helpers shared by gen_images.py, gen_video.py and the renderer.

Conventions follow the reference tools so that seeds give the same images everywhere:
z for seed s is `np.random.RandomState(s).randn(z_dim)`; the user input transform of the
Fourier-feature input is the inverse of [[c, s, tx], [-s, c, ty], [0, 0, 1]] (rotation by
`rotate` degrees, translation (tx, ty) in canvas units); images map [-1, 1] -> [0, 255].
"""

import numpy as np
import torch


def seed_to_z(seed: int, z_dim: int, device='cpu') -> torch.Tensor:
    """The latent of one seed: float32 [z_dim], drawn in float64 as the reference tools do."""
    z = np.random.RandomState(seed).randn(z_dim)                          # [z_dim] float64
    return torch.from_numpy(z).to(device=device, dtype=torch.float32)


def seeds_to_z(seeds, z_dim: int, device='cpu') -> torch.Tensor:
    """Latents of several seeds stacked: float32 [N, z_dim]."""
    return torch.stack([seed_to_z(s, z_dim, device) for s in seeds])


def class_labels(G, class_idx, batch: int, device='cpu') -> torch.Tensor:
    """One-hot labels [batch, c_dim] for a conditional G (an empty [batch, 0] when unconditional).

    Raises ValueError when a conditional network gets no class, or the class is out of range.
    """
    c = torch.zeros([batch, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError('the network is unconditional, so a class cannot be chosen; drop --class.')
        return c
    if class_idx is None:
        raise ValueError(f'the network is conditional ({G.c_dim} classes); choose one with --class.')
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f'class {class_idx} is out of range; the network has classes 0..{G.c_dim - 1}.')
    c[:, class_idx] = 1
    return c


def make_transform(translate=(0.0, 0.0), angle_deg: float = 0.0) -> np.ndarray:
    """Forward 3x3 matrix [[c, s, tx], [-s, c, ty], [0, 0, 1]] (float64) of the reference tools."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0.0, 0.0, 1.0]])


def has_input_transform(G) -> bool:
    """True for generators with a Fourier-feature input (StyleGAN3, stylegan2-fourier)."""
    inp = getattr(getattr(G, 'synthesis', None), 'input', None)
    return isinstance(getattr(inp, 'transform', None), torch.Tensor)


def set_input_transform(G, translate=(0.0, 0.0), angle_deg: float = 0.0) -> None:
    """Write the inverse of `make_transform` into G's input `transform` buffer.

    The buffer maps output canvas coordinates back to the input features, hence the inverse:
    the image content moves by +translate and rotates by +angle. Raises ValueError for
    generators without a Fourier-feature input (plain StyleGAN2).
    """
    if not has_input_transform(G):
        if tuple(translate) == (0.0, 0.0) and angle_deg == 0.0:
            return
        raise ValueError('this network has no Fourier-feature input, so it cannot be translated or '
                         'rotated (only StyleGAN3 and stylegan2-fourier can).')
    m = np.linalg.inv(make_transform(translate, angle_deg))                   # float64 [3, 3]
    buf = G.synthesis.input.transform
    buf.copy_(torch.from_numpy(m).to(device=buf.device, dtype=buf.dtype))


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] images in about [-1, 1] -> uint8 [N, H, W, C] (the reference mapping)."""
    x = (img.detach().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.cpu().numpy()
