"""models/train_bundled.sh keeps a run's resumable state in the repository and brings it back.

A new machine keeps only the repository: `keep` copies what exact resume needs into
models/runs/<NAME>/, `resume` restores it when $RUNS has no such run, and `transfer` starts a
new run from the bundled file when there is nothing to resume. train.py is replaced by a stub
that records its arguments, so no training runs here.
"""

import os
import pathlib
import re
import subprocess
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'models' / 'train_bundled.sh'
RUN_FOLDER = '00000-stylegan3-r-emoji-faces64-gpus1-batch16-gamma1-faces64'
RUN_FILES = {'training-state.pt': b'state', 'training_options.json': b'{}', 'log.txt': b'tick 0\n',
             'stats.jsonl': b'{}\n', 'network-snapshot-000000.pt': b'snap0'}


@pytest.fixture()
def env(tmp_path):
    """$RUNS with one stopped run and its dataset, an empty kept folder, and a stub python."""
    runs, kept = tmp_path / 'runs', tmp_path / 'kept'
    run = runs / 'emoji-sg3r' / RUN_FOLDER
    run.mkdir(parents=True)
    for name, data in RUN_FILES.items():
        (run / name).write_bytes(data)
    (run / 'network-snapshot-000002.pt').write_bytes(b'big')    # snapshots other than the first stay out
    (run / 'fakes000002.png').write_bytes(b'png')
    (runs / 'data').mkdir()
    (runs / 'data' / 'emoji-faces64.zip').write_bytes(b'zip')
    calls = tmp_path / 'calls.txt'
    stub = tmp_path / 'python'
    stub.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    stub.chmod(0o755)
    environ = {**os.environ, 'RUNS': str(runs), 'KEPT': str(kept), 'PY': str(stub)}
    return dict(runs=runs, kept=kept, calls=calls, environ=environ)


def script(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', str(SCRIPT), *args], env=env['environ'], capture_output=True, text=True,
                          timeout=60)


def wait_for_calls(path: pathlib.Path) -> str:
    for _ in range(100):           # launch() starts train.py in the background
        if path.is_file() and 'train.py' in path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError('train.py was not launched')


def test_keep_then_resume_on_a_new_machine(env):
    result = script(env, 'keep', 'emoji-sg3r')
    assert result.returncode == 0, result.stderr
    kept = env['kept'] / 'emoji-sg3r' / RUN_FOLDER
    assert {p.name: p.read_bytes() for p in kept.iterdir()} == RUN_FILES

    # A new machine: no runs folder at all (not even the dataset, which resume rebuilds).
    subprocess.run(['rm', '-rf', str(env['runs'])], check=True)
    result = script(env, 'resume', 'emoji-sg3r')
    assert result.returncode == 0, result.stderr
    assert 'emoji-sg3r: restored from models/runs/emoji-sg3r' in result.stdout
    restored = env['runs'] / 'emoji-sg3r' / RUN_FOLDER
    assert {p.name: p.read_bytes() for p in restored.iterdir()} == RUN_FILES
    calls = wait_for_calls(env['calls']).splitlines()
    assert any('dataset_tool.py' in c and '--subset faces-people' in c for c in calls)
    assert any(c.endswith(f'train.py --outdir {env["runs"]}/emoji-sg3r --resume latest') for c in calls)


def test_cooldown_resumes_a_kept_run_at_new_learning_rates(env):
    assert script(env, 'keep', 'emoji-sg3r').returncode == 0
    subprocess.run(['rm', '-rf', str(env['runs'])], check=True)      # a new machine
    result = script(env, 'cooldown', 'emoji-sg3r', '0.0005', '0.0004')
    assert result.returncode == 0, result.stderr
    assert 'emoji-sg3r: restored from models/runs/emoji-sg3r' in result.stdout
    calls = wait_for_calls(env['calls']).splitlines()
    assert calls[-1].endswith(f'train.py --outdir {env["runs"]}/emoji-sg3r --resume latest '
                              '--glr 0.0005 --dlr 0.0004')

    result = script(env, 'cooldown', 'emoji-sg3r', '0.0005')
    assert result.returncode == 2 and 'usage:' in result.stderr
    result = script(env, 'cooldown', 'emoji-sg2f', '0.0005', '0.0004')   # nothing to cool down
    assert result.returncode == 1
    assert result.stderr.strip() == f'emoji-sg2f: no run in {env["runs"]}/emoji-sg2f to cool down'


def test_transfer_starts_from_the_bundle_and_keeps_its_json(env):
    subprocess.run(['rm', '-rf', str(env['runs'] / 'emoji-sg3r')], check=True)
    result = script(env, 'transfer', 'emoji-sg3r')
    assert result.returncode == 0, result.stderr
    base = env['runs'] / 'emoji-sg3r' / 'transfer-base.json'
    assert base.read_text() == (REPO / 'models' / 'emoji-sg3r.json').read_text()
    call = wait_for_calls(env['calls'])
    assert f'--transfer {REPO}/models/emoji-sg3r.safetensors' in call
    assert '--cfg stylegan3-r --cbase 2048 --cmax 24 --sg3-layers 8' in call and '--aug ada' in call

    # The kept copy carries the base along, so a restored run still counts the bundle's kimg.
    (env['runs'] / 'emoji-sg3r' / RUN_FOLDER).mkdir()
    (env['runs'] / 'emoji-sg3r' / RUN_FOLDER / 'training-state.pt').write_bytes(b'state')
    assert script(env, 'keep', 'emoji-sg3r').returncode == 0
    assert (env['kept'] / 'emoji-sg3r' / 'transfer-base.json').read_text() == base.read_text()

    # A second transfer would hide the run from `resume`: refused, nothing launched.
    before = env['calls'].read_text()
    result = script(env, 'transfer', 'emoji-sg3r')
    assert 'exists already' in result.stderr
    time.sleep(0.5)
    assert env['calls'].read_text() == before
    assert result.returncode == 1


def test_transfer_without_a_bundle_is_refused_before_creating_anything(env):
    result = script(env, 'transfer', 'emoji-nope')
    assert result.returncode == 1
    assert result.stderr.strip() == (f'emoji-nope: {REPO}/models/emoji-nope.json is missing, '
                                     'so there is nothing to transfer from.')
    assert not (env['runs'] / 'emoji-nope').exists()
    assert not env['calls'].exists()


VARIANTS = {  # variant: (bundle it trains, G options of that bundle's run, D options)
    'emoji-sg3r-d48': ('emoji-sg3r', '--cfg stylegan3-r --cbase 2048 --cmax 24 --sg3-layers 8',
                       '--d-cbase 4096 --d-cmax 48'),
    'emoji-sg3t-d64': ('emoji-sg3t', '--cfg stylegan3-t --cbase 4096 --cmax 32 --sg3-layers 10',
                       '--d-cbase 8192 --d-cmax 64'),
    'emoji-sg2f-dwarm': ('emoji-sg2f', '--cfg stylegan2-fourier --cbase 4096 --cmax 32', '--d-warmup 10'),
    'emoji-sg2f-slowg': ('emoji-sg2f', '--cfg stylegan2-fourier --cbase 4096 --cmax 32',
                         '--d-warmup 10 --glr 0.0005'),
    'emoji-sg2f-d48': ('emoji-sg2f', '--cfg stylegan2-fourier --cbase 4096 --cmax 32',
                       '--d-cbase 4096 --d-cmax 48'),
    'emoji-sg3t-xd48': ('emoji-sg3t', '--cfg stylegan3-t --cbase 4096 --cmax 32 --sg3-layers 10',
                        '--d-cbase 4096 --d-cmax 48 --transfer-d {kept}/donors/emoji-sg3r-d48-000217.pt'),
    'emoji-sg2f-xd48': ('emoji-sg2f', '--cfg stylegan2-fourier --cbase 4096 --cmax 32',
                        '--d-cbase 4096 --d-cmax 48 --transfer-d {kept}/donors/emoji-sg3r-d48-000217.pt'),
}


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_a_variant_transfers_from_its_base_bundle_beside_the_main_run(env, variant):
    bundle, g_options, d_options = VARIANTS[variant]
    result = script(env, 'transfer', variant)        # emoji-sg3r's own run (in env) stays put
    assert result.returncode == 0, result.stderr
    base = env['runs'] / variant / 'transfer-base.json'
    assert base.read_text() == (REPO / 'models' / f'{bundle}.json').read_text()
    call = wait_for_calls(env['calls'])
    assert f'--outdir {env["runs"]}/{variant} ' in call
    assert f'--transfer {REPO}/models/{bundle}.safetensors' in call
    # The same G as the bundle's run (so its snapshots export to that bundle); only D or the
    # schedule differs.
    assert f'{g_options} {d_options.format(kept=env["kept"])}' in call

    # status lists a variant only once it has a run folder; the bundled names always.
    assert variant not in script(env, 'status').stdout
    (env['runs'] / variant / RUN_FOLDER).mkdir()
    status = script(env, 'status').stdout
    assert f'{variant}: {env["runs"]}/{variant}/{RUN_FOLDER}' in status
    assert 'emoji-sg2f: not started here' in status


FROM_SCRATCH = {  # variants started with `start`: their full options
    'emoji-sg2f-d48': '--cfg stylegan2-fourier --cbase 4096 --cmax 32 --d-cbase 4096 --d-cmax 48',
    'emoji-sg3t-d48': '--cfg stylegan3-t --cbase 4096 --cmax 32 --sg3-layers 10 --d-cbase 4096 --d-cmax 48',
}


@pytest.mark.parametrize('variant', sorted(FROM_SCRATCH))
def test_start_trains_a_variant_from_scratch_beside_the_main_run(env, variant):
    result = script(env, 'start', variant)
    assert result.returncode == 0, result.stderr
    call = wait_for_calls(env['calls'])
    assert f'--outdir {env["runs"]}/{variant} ' in call
    assert FROM_SCRATCH[variant] in call
    assert '--aug ada' in call and '--resume' not in call
    # From scratch: no bundle to transfer from, so nothing adds the bundle's kimg to this run.
    assert '--transfer' not in call
    assert not (env['runs'] / variant / 'transfer-base.json').exists()
    # A second start would hide the first run from `resume`: refused.
    result = script(env, 'start', variant)
    assert result.returncode == 1 and 'exists already' in result.stderr


def test_every_donor_d_the_script_names_is_in_the_repository():
    """A variant started with --transfer-d must be startable on a new machine too."""
    from torch_utils import network_files
    donors = set(re.findall(r'\$KEPT/(donors/[\w.-]+\.pt)', SCRIPT.read_text()))
    assert donors
    for donor in sorted(donors):
        assert network_files.load_network(REPO / 'models' / 'runs' / donor).get('D') is not None, donor
