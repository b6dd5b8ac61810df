"""Texture-sticking visualisations and video helpers (StyleGAN3 paper, Figure 1 and section 1).

Texture sticking: details of an aliasing generator stay glued to pixel coordinates while the
object moves. Two still images expose it:

* the *average* of many images from a small latent neighbourhood: stuck details stay in place
  and average to a sharp pattern, equivariant ones move with the object and blur out;
* a *strip*: one pixel column taken from every frame of a moving sequence and laid side by side;
  stuck details draw straight horizontal lines, details that move with the object draw curves.
"""

import os
import pathlib

import numpy as np
import torch
from PIL import Image, ImageDraw

from torch_utils import gen_utils


def seeds_to_ws(G, seeds, trunc, device) -> torch.Tensor:
    """Map seeds to ws [len(seeds), num_ws, w_dim] with z drawn as gen_images.py draws them."""
    z = gen_utils.seeds_to_z(seeds, G.z_dim, device)
    c = torch.zeros([len(seeds), G.c_dim], device=device)
    with torch.no_grad():
        return G.mapping(z, c, truncation_psi=trunc)


def to_rgb_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in about [-1, 1] -> uint8 [N, H, W, 3] (grayscale repeated to RGB)."""
    img = gen_utils.to_uint8(img)
    return np.repeat(img, 3, axis=3) if img.shape[3] == 1 else img[..., :3]


def synthesize(G, ws: torch.Tensor) -> np.ndarray:
    """Render ws [N, num_ws, w_dim] -> uint8 [N, H, W, 3]."""
    with torch.no_grad():
        return to_rgb_uint8(G.synthesis(ws, noise_mode='const'))


def tile(images: np.ndarray, gw: int, gh: int) -> np.ndarray:
    """[gw*gh, H, W, 3] -> one [gh*H, gw*W, 3] grid, row-major."""
    n, h, w, c = images.shape
    if n != gw * gh:
        raise ValueError(f'{n} images do not fill a {gw}x{gh} grid.')
    return images.reshape(gh, gw, h, w, c).transpose(0, 2, 1, 3, 4).reshape(gh * h, gw * w, c)


def neighbourhood_average(G, seed, num_samples, radius, trunc, device, batch=16) -> np.ndarray:
    """Mean image of `num_samples` latents z = z_seed + radius * n (n ~ N(0, I)), uint8 [H, W, 3]."""
    z0 = gen_utils.seeds_to_z([seed], G.z_dim, device)                    # [1, z_dim]
    noise = torch.from_numpy(np.random.RandomState(seed + 1).randn(num_samples, G.z_dim)).float().to(device)
    total = 0
    for start in range(0, num_samples, batch):
        z = z0 + radius * noise[start:start + batch]                      # [B, z_dim]
        c = torch.zeros([len(z), G.c_dim], device=device)
        with torch.no_grad():
            total = total + G(z, c, truncation_psi=trunc, noise_mode='const').double().sum(0)
    return to_rgb_uint8((total / num_samples)[None])[0]


def path_frames(network, seed, num_frames, latent_speed, translate_speed, rotate_speed, untransform,
                trunc, device) -> list:
    """Frames uint8 [H, W, 3] of the visualizer's moving view, rendered by the same Renderer.

    Frame i sits at latent position seed + i * latent_speed (a bilinear blend of neighbouring
    seeds) with the input translated by i * translate_speed image widths and rotated by
    i * rotate_speed degrees (StyleGAN3 section 3.1). `untransform` warps each output back with a
    band-limited resampler, so an equivariant generator shows a still object and an aliasing one
    shows details crawling.
    """
    from visualizer.renderer import RenderArgs, Renderer
    renderer = Renderer()
    frames = []
    for i in range(num_frames):
        args = RenderArgs(network=str(network), device=str(device), seed=seed, latent_x=i * latent_speed,
                          trunc_psi=trunc, translate=(i * translate_speed, 0.0), rotate=i * rotate_speed / 360,
                          untransform=untransform)
        result = renderer.render(args)
        if result.error:
            raise ValueError(result.error)
        frames.append(result.image)
    return frames


def pixel_strip(frames: list, axis: str = 'column') -> np.ndarray:
    """Stack the centre column (or row) of every frame: column -> [H, F, 3], row -> [F, W, 3]."""
    stack = np.stack(frames)                                       # [F, H, W, 3]
    if axis == 'column':
        return stack[:, :, stack.shape[2] // 2].transpose(1, 0, 2)
    if axis == 'row':
        return stack[:, stack.shape[1] // 2]
    raise ValueError(f"axis must be 'column' or 'row', got {axis!r}.")


def zoom(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of a uint8 image [H, W, 3] (pixels stay sharp squares, so
    stuck details of a 64x64 model remain visible in a README)."""
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def label_panels(panels: list, labels: list, gap: int = 4, header: int = 14) -> np.ndarray:
    """Place uint8 panels [H, W, 3] side by side on white with a text label above each."""
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    canvas = Image.new('RGB', (width, height + header), 'white')
    draw = ImageDraw.Draw(canvas)
    x = 0
    for panel, label in zip(panels, labels):
        canvas.paste(Image.fromarray(panel), (x, header))
        draw.text((x + 2, 1), str(label), fill='black')
        x += panel.shape[1] + gap
    out = np.asarray(canvas)
    return out[:out.shape[0] // 2 * 2, :out.shape[1] // 2 * 2]    # even size for video codecs


def write_png(path, image: np.ndarray):
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + '.tmp.png')
    Image.fromarray(image).save(tmp)
    os.replace(tmp, path)


def write_video(path, frames: list, fps: int):
    """Write uint8 frames with imageio-ffmpeg (H.264 for .mp4), to a temporary file first."""
    import imageio
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + '.tmp' + path.suffix)
    try:
        writer = imageio.get_writer(tmp, fps=fps, macro_block_size=1, **({'codec': 'libx264', 'quality': 8}
                                                                         if path.suffix != '.gif' else {}))
    except Exception as exc:  # imageio raises several types when ffmpeg is missing
        raise RuntimeError(f'cannot write {path.suffix} video ({exc}); install imageio-ffmpeg or ffmpeg.') from None
    with writer:
        for frame in frames:
            writer.append_data(frame)
    os.replace(tmp, path)
