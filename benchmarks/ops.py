"""Native vs reference ops backend at the layer shapes of full-size networks (not a test).

    python benchmarks/ops.py            # StyleGAN3-T 256x256 (all 15 layers) + StyleGAN2 256
    python benchmarks/ops.py --quick    # a subset with <= 16 channels per layer, under a minute

Batch 1, torch.set_num_threads(2), forward pass without autograd, median of 5 timed runs per
backend (a run repeats the op until it lasts >= 20 ms, to time sub-millisecond ops reliably).
Both backends run side by side in the same process, with malloc tuned as in our tools
(torch_utils/cpu_memory.py; STYLEGAN_MALLOC_TUNING=0 measures with glibc's default policy,
under which the reference's page faults inflate its times). Prints one JSON object per case and a
final {"summary": {op: geometric-mean speedup}} line; also checks native == ref on each case.

Shapes:
* filtered_lrelu: every StyleGAN3-T synthesis layer (L0..L13 and ToRGB) at 256x256,
  channel_base 32768, channel_max 512, 10-pixel margins: input = the 3x3 conv output.
* upfirdn2d: the StyleGAN3-T layers' up- and down-sampling FIR stages (12/24-tap separable
  Kaiser filters, as the reference filtered_lrelu runs them), and StyleGAN2 at 256x256: the
  4x4 filter after each up-sampling conv, the RGB skip up-sampling and the discriminator's
  down-sampling.
* bias_act: StyleGAN2 feature maps (lrelu, clamp 256) and a mapping-network row.
"""

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ops import bias_act as bias_act_op          # noqa: E402
from ops import filter_design                    # noqa: E402
from ops import filtered_lrelu as flrelu_op      # noqa: E402
from ops import upfirdn2d as upfirdn2d_op        # noqa: E402


# ----------------------------------------------------------------------------------------------
# StyleGAN3 layer schedule (Karras et al. 2021, appendix F): cutoffs and stopbands grow
# geometrically up to the critically sampled last layers; sampling rates are powers of two.

@dataclasses.dataclass
class Sg3Layer:
    name: str
    channels: int          # output channels of the conv = channels filtered_lrelu sees
    in_size: int           # conv output size (= input size of filtered_lrelu)
    up: int
    down: int
    fu: torch.Tensor | None
    fd: torch.Tensor | None
    padding: list
    gain: float
    slope: float


def sg3_layers(resolution=256, channel_base=32768, channel_max=512, num_layers=14,
               num_critical=2, margin=10, first_cutoff=2.0, first_stopband=2 ** 2.1,
               last_stopband_rel=2 ** 0.3, filter_size=6, lrelu_upsampling=2, conv_kernel=3):
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exps = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exps                    # f_c
    stopbands = first_stopband * (last_stopband / first_stopband) ** exps            # f_t
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))         # s
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs                         # f_h
    sizes = rates + margin * 2
    sizes[-2:] = resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    layers = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        torgb = idx == num_layers
        kernel = 1 if torgb else conv_kernel
        tmp_rate = max(rates[prev], rates[idx]) * (1 if torgb else lrelu_upsampling)
        up = int(np.rint(tmp_rate / rates[prev]))
        down = int(np.rint(tmp_rate / rates[idx]))
        up_taps = filter_size * up if up > 1 and not torgb else 1
        down_taps = filter_size * down if down > 1 and not torgb else 1
        fu = _lowpass(up_taps, cutoffs[prev], half_widths[prev] * 2, tmp_rate)
        fd = _lowpass(down_taps, cutoffs[idx], half_widths[idx] * 2, tmp_rate)
        in_size = int(sizes[prev]) + kernel - 1
        pad_total = (int(sizes[idx]) - 1) * down + 1 - in_size * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        out_ch = 3 if torgb else int(channels[idx])
        layers.append(Sg3Layer(f'L{idx}_{int(sizes[idx])}_{out_ch}', out_ch, in_size, up, down,
                               fu, fd, [pad_lo, pad_hi, pad_lo, pad_hi],
                               1.0 if torgb else math.sqrt(2), 1.0 if torgb else 0.2))
    return layers


def _lowpass(numtaps, cutoff, width, fs):
    if numtaps == 1:
        return None
    return torch.as_tensor(filter_design.kaiser_lowpass(numtaps, cutoff, width, fs), dtype=torch.float32)


# ----------------------------------------------------------------------------------------------
# Cases: (op, name, shape, fn(impl) -> output).

QUICK_MAX_CHANNELS = 16  # --quick: same spatial shapes and filters, fewer channels (planes)


def filtered_lrelu_cases(quick):
    layers = sg3_layers()
    if quick:
        layers = [layers[i] for i in (0, 3, 7, 13, 14)]
    for layer in layers:
        g = torch.Generator().manual_seed(0)
        ch = min(layer.channels, QUICK_MAX_CHANNELS) if quick else layer.channels
        x = torch.randn([1, ch, layer.in_size, layer.in_size], generator=g)
        b = torch.randn([ch], generator=g) * 0.1

        def run(impl, layer=layer, x=x, b=b):
            return flrelu_op.filtered_lrelu(x, layer.fu, layer.fd, b, layer.up, layer.down,
                                            layer.padding, layer.gain, layer.slope, 256, impl=impl)
        yield 'filtered_lrelu', f'sg3t256.{layer.name}', list(x.shape), run


def upfirdn2d_cases(quick):
    layers = sg3_layers()
    cap = QUICK_MAX_CHANNELS if quick else None
    for layer in [layers[i] for i in ((0, 5, 13) if quick else (0, 4, 5, 8, 12, 13))]:
        ch = min(layer.channels, cap or layer.channels)
        x = torch.randn([1, ch, layer.in_size, layer.in_size])
        yield from _case(f'sg3t256.{layer.name}.up', x, layer.fu, layer.up, 1, layer.padding, layer.up ** 2)
        mid = (layer.in_size * layer.up + layer.padding[0] + layer.padding[1] - layer.fu.numel() + 1)
        x = torch.randn([1, ch, mid, mid])
        yield from _case(f'sg3t256.{layer.name}.down', x, layer.fd, 1, layer.down, 0, 1)
    f = upfirdn2d_op.setup_filter([1, 3, 3, 1])                           # 4x4 binomial
    resolutions = (32, 128, 256) if quick else (16, 32, 64, 128, 256)
    for res in resolutions:
        ch = min(32768 // res, 512, cap or 512)
        # G: the transposed 3x3 conv with stride 2 gives res+1 samples; the filter keeps res.
        yield from _case(f'sg2g256.b{res}.conv0_filter', torch.randn([1, ch, res + 1, res + 1]), f, 1, 1, 1, 4)
        yield from _case(f'sg2g256.b{res}.torgb_up', torch.randn([1, 3, res // 2, res // 2]), f, 2, 1, [2, 1, 2, 1], 4)
        # D: the 4x4 filter before a strided 3x3 conv, and the residual-skip down-sampling.
        yield from _case(f'sg2d256.b{res}.conv1_filter', torch.randn([1, ch, res, res]), f, 1, 1, 2, 1)
        yield from _case(f'sg2d256.b{res}.skip_down', torch.randn([1, ch, res, res]), f, 1, 2, 1, 1)


def _case(name, x, f, up, down, padding, gain):
    def run(impl):
        return upfirdn2d_op.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=gain, impl=impl)
    yield 'upfirdn2d', name, list(x.shape), run


def bias_act_cases(quick):
    for res in ((64, 256) if quick else (16, 64, 128, 256)):
        ch = min(32768 // res, 512, QUICK_MAX_CHANNELS if quick else 512)
        x, b = torch.randn([1, ch, res, res]), torch.randn([ch])
        yield ('bias_act', f'sg2g256.b{res}.lrelu_clamp', list(x.shape),
               lambda impl, x=x, b=b: bias_act_op.bias_act(x, b, act='lrelu', clamp=256, impl=impl))
    x, b = torch.randn([1, 512]), torch.randn([512])
    yield ('bias_act', 'sg2.mapping.fc', list(x.shape),
           lambda impl: bias_act_op.bias_act(x, b, act='lrelu', impl=impl))


# ----------------------------------------------------------------------------------------------
# Timing.

def time_ms(fn, runs=5, min_run_s=0.02):
    """(median over `runs` of the mean time per call in ms, output of the warm-up call).

    The warm-up call (first-use allocations) also sizes the runs: each lasts >= min_run_s.
    """
    t0 = time.perf_counter()
    out = fn()
    reps = max(1, math.ceil(min_run_s / max(time.perf_counter() - t0, 1e-6)))
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        samples.append((time.perf_counter() - t0) / reps * 1e3)
    return statistics.median(samples), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer shapes (< 60 s)')
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default 2)')
    parser.add_argument('--ops', default='filtered_lrelu,upfirdn2d,bias_act', help='comma list')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    wanted = set(args.ops.split(','))
    generators = {'filtered_lrelu': filtered_lrelu_cases, 'upfirdn2d': upfirdn2d_cases,
                  'bias_act': bias_act_cases}
    speedups = {}
    with torch.no_grad():
        for op, gen in generators.items():
            if op not in wanted:
                continue
            for op_name, name, shape, run in gen(args.quick):
                run('native')  # first use builds/loads the native library: not timed
                ref_ms, y_ref = time_ms(lambda: run('ref'))
                nat_ms, y_nat = time_ms(lambda: run('native'))
                rel_err = ((y_nat - y_ref).abs().max() / y_ref.abs().max().clamp(min=1e-30)).item()
                speedups.setdefault(op_name, []).append(ref_ms / nat_ms)
                print(json.dumps({'op': op_name, 'case': name, 'shape': shape,
                                  'ref_ms': round(ref_ms, 4), 'native_ms': round(nat_ms, 4),
                                  'speedup': round(ref_ms / nat_ms, 2), 'max_rel_err': float(f'{rel_err:.2e}')}),
                      flush=True)
    summary = {op: round(math.exp(statistics.fmean(math.log(s) for s in v)), 2) for op, v in speedups.items()}
    worst = {op: round(min(v), 2) for op, v in speedups.items()}
    print(json.dumps({'summary': summary, 'min_speedup': worst, 'threads': args.threads,
                      'malloc_tuned': 'MALLOC_MMAP_THRESHOLD_' in os.environ, 'torch': torch.__version__}))


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # as our tools do; STYLEGAN_MALLOC_TUNING=0 for glibc's default
    main()
