"""Native ops advise their large (>= 32 MB, freshly mmap()ed) outputs to use 2 MB pages
(ops/native/memory.h): writing such an output then costs a few dozen page faults instead of one
per 4 KB page. Counted with getrusage: the op must fault in far fewer pages than its output
has 4 KB pages, for every entry point that writes a large output."""

import pathlib
import resource

import pytest
import torch

from ops import backend, bias_act, filtered_lrelu, upfirdn2d

THP = pathlib.Path('/sys/kernel/mm/transparent_hugepage/enabled')


def _thp_mode():
    text = THP.read_text() if THP.exists() else ''
    return text[text.find('[') + 1:text.find(']')] if '[' in text else None


def _faults(fn):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out = fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, out


OPS = {
    # output [1, 80, 362, 362] float32 = 42 MB
    'upfirdn2d': lambda x, f: upfirdn2d.upfirdn2d(x, f, up=2, padding=[1, 2, 1, 2], gain=4, impl='native'),
    'filtered_lrelu': lambda x, f: filtered_lrelu.filtered_lrelu(x, f, f, up=2, down=1, padding=[1, 2, 1, 2],
                                                                 impl='native'),
    'bias_act': lambda x, f: bias_act.bias_act(upfirdn2d.upfirdn2d(x, f, up=2, padding=[1, 2, 1, 2], gain=4,
                                                                   impl='native'), act='lrelu', impl='native'),
}


@pytest.mark.parametrize('op', sorted(OPS))
def test_large_outputs_fault_in_huge_pages(op):
    if not backend.native_available():
        pytest.skip('native ops backend unavailable')
    if _thp_mode() not in ('madvise', 'always'):
        pytest.skip(f'transparent huge pages are {_thp_mode()!r} on this kernel')
    x = torch.randn(1, 80, 181, 181)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    run = lambda: OPS[op](x, f)
    run()                                       # warm-up: build, taps, per-thread buffers
    faults, y = _faults(run)
    small_pages = y.numel() * y.element_size() // 4096
    if op == 'bias_act':                        # two large outputs: the upfirdn2d and bias_act's
        small_pages *= 2
    assert y.numel() * y.element_size() >= 32 << 20
    assert faults < small_pages / 4, f'{faults} page faults for {small_pages} 4 KB pages of output'
