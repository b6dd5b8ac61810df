"""Without a native build the ops still work through impl='auto' (reference backend, one
warning), impl='native' fails with a clear error, and a failed build leaves no cache entry.

Each scenario runs in a fresh subprocess: the backend remembers a failed build for the whole
process, so it cannot be re-tested in the pytest process itself.
"""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]

_SCRIPT = r'''
import json, math, warnings
import torch
from ops import bias_act, filtered_lrelu, upfirdn2d

x = torch.randn([2, 3, 14, 13], generator=torch.Generator().manual_seed(0))
b = torch.randn([3])
f = torch.tensor([1., 3., 3., 1.]) / 8
calls = {
    'upfirdn2d': lambda impl: upfirdn2d.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl=impl),
    'filtered_lrelu': lambda impl: filtered_lrelu.filtered_lrelu(x, f, f, b, up=2, down=2, padding=3, clamp=1.0, impl=impl),
    'bias_act': lambda impl: bias_act.bias_act(x, b, act='lrelu', clamp=1.0, impl=impl),
}
report = {'equal': {}}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    for name, call in calls.items():
        for _ in range(2):  # the warning must not repeat
            y_auto = call('auto')
        report['equal'][name] = bool(torch.equal(y_auto, call('ref')))
report['fallback_warnings'] = [str(w.message) for w in caught if 'reference ops' in str(w.message)]
try:
    calls['upfirdn2d']('native')
    report['native_error'] = None
except Exception as exc:
    report['native_error'] = f'{type(exc).__name__}: {exc}'
print('REPORT ' + json.dumps(report))
'''


def run_scenario(tmp_path, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k != 'STYLEGAN_OPS_IMPL'}
    env.update(STYLEGAN_CACHE_DIR=str(tmp_path / 'cache'), **env_overrides)
    proc = subprocess.run([sys.executable, '-c', _SCRIPT], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('REPORT ')][-1]
    return json.loads(line[len('REPORT '):])


def check_fallback(report, reason):
    assert report['equal'] == {'upfirdn2d': True, 'filtered_lrelu': True, 'bias_act': True}
    assert len(report['fallback_warnings']) == 1, report['fallback_warnings']
    assert reason in report['fallback_warnings'][0]
    assert report['native_error'] is not None and 'native ops backend unavailable' in report['native_error']
    assert reason in report['native_error']


def test_fallback_when_native_is_disabled(tmp_path):
    report = run_scenario(tmp_path, STYLEGAN_OPS_NO_NATIVE='1')
    check_fallback(report, 'STYLEGAN_OPS_NO_NATIVE')
    assert not (tmp_path / 'cache').exists()  # disabled means: not even a cache directory


def test_fallback_when_the_compiler_fails_leaves_no_cache_entry(tmp_path):
    report = run_scenario(tmp_path, CXX='/bin/false')
    check_fallback(report, 'building the native ops failed')
    leftovers = [p.name for p in (tmp_path / 'cache').iterdir() if not p.name.endswith('.lock')]
    assert leftovers == [], f'a failed build left {leftovers} behind'
