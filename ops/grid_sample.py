"""Bilinear grid sampling with gradients of any order (used by the augmentation pipeline).

Same result as torch.nn.functional.grid_sample(input, grid, mode='bilinear',
padding_mode='zeros', align_corners=False). torch's own backward for it is not differentiable
again, but R1 regularisation (StyleGAN2-ADA) differentiates the discriminator's input gradient,
which passes through the augmentation. So the forward uses torch's fast kernel and the backward
is written with ordinary differentiable torch ops (gather / scatter_add), which makes autograd
provide the second (and higher) order gradients.
"""

import torch

from ops import _validate


def grid_sample(input, grid) -> torch.Tensor:
    """Sample input [N, C, H, W] at grid [N, Ho, Wo, 2] (x, y in [-1, 1]) -> [N, C, Ho, Wo]."""
    input = _validate.image(input, 'input')
    grid = _validate.tensor(grid, 'grid', ndims=(4,))
    if grid.shape[0] != input.shape[0] or grid.shape[3] != 2:
        raise ValueError(f'grid must have shape [{input.shape[0]}, Ho, Wo, 2] for input of shape '
                         f'{list(input.shape)}, got {list(grid.shape)}.')
    if grid.dtype != input.dtype:
        raise ValueError(f'grid dtype {grid.dtype} must equal input dtype {input.dtype}.')
    return _GridSample.apply(input, grid)


class _GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, grid):
        ctx.save_for_backward(input, grid)
        return torch.nn.functional.grid_sample(input, grid, mode='bilinear', padding_mode='zeros',
                                               align_corners=False)

    @staticmethod
    def backward(ctx, grad_out):
        input, grid = ctx.saved_tensors
        need_input, need_grid = ctx.needs_input_grad[:2]
        return _vjp(input, grid, grad_out, need_input, need_grid)


def _corners(grid, height, width):
    """The four bilinear neighbours of every sampling point: (y index, x index, weight, d weight
    / d ix, d weight / d iy) with indices as float tensors [N, Ho, Wo]."""
    # align_corners=False: -1 and +1 are the outer edges of the border pixels.
    ix = ((grid[..., 0] + 1) * width - 1) / 2              # [N, Ho, Wo] in pixel units
    iy = ((grid[..., 1] + 1) * height - 1) / 2
    x0, y0 = ix.detach().floor(), iy.detach().floor()
    tx, ty = ix - x0, iy - y0                              # fractional offsets, carry grid grads
    corners = []
    for dy in (0, 1):
        wy, dwy = (ty, 1.0) if dy else (1 - ty, -1.0)
        for dx in (0, 1):
            wx, dwx = (tx, 1.0) if dx else (1 - tx, -1.0)
            corners.append((y0 + dy, x0 + dx, wx * wy, dwx * wy, wx * dwy))
    return corners


def _flat_index(yi, xi, height, width):
    """Flattened pixel index (clamped into range) and the in-bounds mask, both [N, 1, Ho*Wo]."""
    valid = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    index = yi.clamp(0, height - 1) * width + xi.clamp(0, width - 1)
    n = index.shape[0]
    return index.long().reshape(n, 1, -1), valid.reshape(n, 1, -1)


def _vjp(input, grid, grad_out, need_input, need_grid):
    """Gradients of sum(grad_out * grid_sample(input, grid)) w.r.t. input and grid."""
    n, c, h, w = input.shape
    go = grad_out.reshape(n, c, -1)                        # [N, C, Ho*Wo]
    flat = input.reshape(n, c, h * w)                      # [N, C, H*W]
    grad_input = torch.zeros_like(flat) if need_input else None
    grad_ix = grad_iy = 0
    for yi, xi, weight, dw_dix, dw_diy in _corners(grid, h, w):
        index, valid = _flat_index(yi, xi, h, w)
        if need_input:
            contrib = go * (weight.reshape(n, 1, -1) * valid)                    # [N, C, Ho*Wo]
            grad_input = grad_input.scatter_add(2, index.expand(n, c, -1), contrib)
        if need_grid:
            values = flat.gather(2, index.expand(n, c, -1)) * valid             # [N, C, Ho*Wo]
            dot = (go * values).sum(1)                                           # [N, Ho*Wo]
            grad_ix = grad_ix + dot * dw_dix.reshape(n, -1)
            grad_iy = grad_iy + dot * dw_diy.reshape(n, -1)
    if need_input:
        grad_input = grad_input.reshape(n, c, h, w)
    grad_grid = None
    if need_grid:
        # d ix / d gx = W / 2, d iy / d gy = H / 2.
        grad_grid = torch.stack([grad_ix * (w / 2), grad_iy * (h / 2)], dim=-1)
        grad_grid = grad_grid.reshape(grid.shape)
    return grad_input, grad_grid
