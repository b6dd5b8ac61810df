"""Differentiable signal-processing ops of StyleGAN2/3 (DESIGN.md section 5).

Every op takes `impl='auto'|'ref'|'native'`: `ref` is the plain-PyTorch definition of
correctness, `native` the C++ CPU backend in `ops/native/`, `auto` picks native on CPU when it
builds and falls back to `ref` with one warning otherwise. `STYLEGAN_OPS_IMPL` forces a choice.
"""
