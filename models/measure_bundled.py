"""Measure an exported bundled model and write its metrics JSON and model card.

    python models/measure_bundled.py --name emoji-sg3t \
        --run /work/runs/emoji-sg3t/00000-stylegan3-t-emoji-faces64-gpus1-batch16-gamma1-faces64 \
        --snapshot-kimg 20 [--num-gen 1000] [--eq-samples 2000] [--skip-eq] [--skip-fps] [--final] \
        [--description "One paragraph on what the samples look like."]

Run it after `models/export_bundled.py` has written models/<name>.safetensors from the run's
network-snapshot-<kimg>.pt. It measures
  * fd_mobilenet and swd of the bundled file and of the run's first snapshot (0 kimg), with
    --num-gen generated images against the run's training data (mirrored as trained);
  * eqt50k_int, eqt50k_frac, eqr50k of the bundled file with --eq-samples samples (a reduced-count
    stand-in for the 50k metrics when below 50000; the count is recorded as `eq_num_samples`);
  * render FPS of the visualizer's Renderer with one thread (benchmarks/visualizer.py);
  * kimg and training wall time from the run's log.txt (summed over resumed segments);
and writes models/<name>.json and models/<name>.md (docs/bundled-models.md, "Measuring and
writing the card"). Metric results are cached in the run folder (metric-<metric>.jsonl, keyed
by snapshot file, or bundled file name + content hash, and sample count), so a rerun only
measures what changed.

A run continued from a bundle (`models/train_bundled.sh transfer`: the original run folder was
lost, or a training variant with another D) has that bundle's JSON beside it as
../transfer-base.json: its kimg and hours are added to the run's, and its first-snapshot
fd_mobilenet / swd stay the baseline.
"""

import dataclasses
import hashlib
import importlib.util
import json
import os
import pathlib
import re
import shlex
import statistics
import sys

import click

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = REPO / 'models'
QUALITY_METRICS = ('fd_mobilenet', 'swd')
EQ_METRICS = ('eqt50k_int', 'eqt50k_frac', 'eqr50k')
FULL_EQ_SAMPLES = 50000
FIRST_SNAPSHOT = 'network-snapshot-000000.pt'
STICKING_PANELS = ('sticking-average.png', 'sticking-strips.png')
CFG_TITLES = {'stylegan3-t': 'StyleGAN3-T', 'stylegan3-r': 'StyleGAN3-R',
              'stylegan2-fourier': 'StyleGAN2 with Fourier input', 'stylegan2': 'StyleGAN2'}


def snapshot_file_name(kimg: int) -> str:
    return f'network-snapshot-{kimg:06d}.pt'


# ---------------------------------------------------------------------------------------------
# Training time from log.txt.

_TICK = re.compile(r'^tick\s+(\d+)\s+kimg\s+([\d.]+)\s+time\s+.+?\s+sec/tick\s+([\d.]+)\s+'
                   r'sec/kimg\s+([\d.]+)\s+maintenance\s+([\d.]+)')
_RESUME = re.compile(r'^Resuming from kimg ([\d.]+) \(tick (\d+)[;)]')  # newer lines add the lrs


@dataclasses.dataclass(frozen=True)
class Tick:
    tick: int
    kimg: float          # as printed: one decimal
    seconds: float       # sec/tick + the maintenance reported on this line (see kept_ticks)
    sec_per_kimg: float


@dataclasses.dataclass
class Segment:
    """The tick lines one training process wrote; `start` = the tick it resumed at (None: fresh start)."""
    start: int | None
    ticks: list


def parse_segments(log_text: str) -> list[Segment]:
    """Tick lines of log.txt grouped by process: a new group starts at every 'Resuming from' line."""
    segments = [Segment(None, [])]
    for line in log_text.splitlines():
        resume = _RESUME.match(line)
        if resume:
            segments.append(Segment(int(resume[2]), []))
            continue
        m = _TICK.match(line)
        if m:
            segments[-1].ticks.append(Tick(int(m[1]), float(m[2]), float(m[3]) + float(m[5]), float(m[4])))
    return segments


def kept_ticks(segments: list[Segment]) -> tuple[list[Tick], list[Tick]]:
    """(ticks on the path to the newest state, ticks whose work a later resume threw away).

    A resumed run restarts from its last training state (written every --snap ticks), so ticks a
    stopped process logged after that state are redone by the next process: a resume at tick T
    supersedes every earlier line with tick >= T.

    Time of one tick: the log's `time` column restarts in each process and is printed to the
    minute only above an hour, so the total is summed from the per-tick columns instead:
    `sec/tick` is the time from the end of the previous tick's maintenance (snapshot writing)
    to this tick's report, and `maintenance` on a line is the maintenance after the previous
    tick; their sum over a process's ticks equals its `time` column. Process start-up before the
    first tick and the unlogged tail of a stopped process are not in the log, so not counted.
    """
    kept: list[Tick] = []
    lost: list[Tick] = []
    for segment in segments:
        start = segment.start if segment.start is not None else (segment.ticks[0].tick if segment.ticks else None)
        if start is not None:
            lost += [t for t in kept if t.tick >= start]
            kept = [t for t in kept if t.tick < start]
        kept += segment.ticks
    return kept, lost


@dataclasses.dataclass(frozen=True)
class TrainingTime:
    tick: int
    kimg: float
    hours: float          # wall-clock training time up to the snapshot's tick, over all processes
    lost_hours: float     # ticks logged but redone after a resume (not in `hours`)
    processes: int        # training processes (segments) that contributed ticks up to the snapshot
    sec_per_kimg: float | None   # median over the contributing ticks (tick 0 excluded: start-up)


def training_time(log_text: str, snapshot_kimg: float) -> TrainingTime:
    """Wall time of the ticks up to the one that wrote the snapshot at `snapshot_kimg` (exact kimg)."""
    segments = parse_segments(log_text)
    kept, lost = kept_ticks(segments)
    # The tick line prints kimg to one decimal; the snapshot's tick is the one printing its kimg.
    at = [t for t in kept if abs(t.kimg - snapshot_kimg) <= 0.05 + 1e-9]
    if not at:
        raise ValueError(f'log.txt has no tick line at kimg {snapshot_kimg:.1f} (the snapshot\'s progress).')
    tick = at[-1].tick
    used = [t for t in kept if t.tick <= tick]
    used_ids = {id(t) for t in used}
    processes = sum(1 for seg in segments if any(id(t) in used_ids for t in seg.ticks))
    rates = [t.sec_per_kimg for t in used if t.tick > 0]
    return TrainingTime(tick=tick, kimg=snapshot_kimg, hours=sum(t.seconds for t in used) / 3600,
                        lost_hours=sum(t.seconds for t in lost) / 3600, processes=processes,
                        sec_per_kimg=statistics.median(rates) if rates else None)


# ---------------------------------------------------------------------------------------------
# Inputs: run folder, snapshot, bundled file.

def read_run(run_dir: pathlib.Path) -> dict:
    if not run_dir.is_dir():
        raise click.ClickException(f'run folder {run_dir} does not exist.')
    options_path = run_dir / 'training_options.json'
    if not options_path.is_file():
        raise click.ClickException(f'{run_dir} is not a training run folder (it has no training_options.json).')
    try:
        return json.loads(options_path.read_text())
    except json.JSONDecodeError:
        raise click.ClickException(f'{options_path} is not valid JSON.') from None


def require_snapshot(run_dir: pathlib.Path, kimg: int) -> pathlib.Path:
    path = run_dir / snapshot_file_name(kimg)
    if not path.is_file():
        have = sorted(p.name[len('network-snapshot-'):-3] for p in run_dir.glob('network-snapshot-*.pt'))
        raise click.ClickException(f'{run_dir} has no {path.name} (snapshots there: {", ".join(have) or "none"}).')
    return path


def bundled_file(models_dir: pathlib.Path, name: str) -> pathlib.Path:
    from torch_utils import bundled
    for ext in bundled.EXTENSIONS:
        if (models_dir / f'{name}{ext}').is_file():
            return models_dir / f'{name}{ext}'
    raise click.ClickException(f'no bundled model {name} in {models_dir}; export it first with '
                               f'models/export_bundled.py --snapshot <run>/network-snapshot-N.pt --name {name}.')


def export_metadata(path: pathlib.Path) -> dict:
    """The metadata export_bundled.py stores in a .safetensors header ({} for other files)."""
    if path.suffix != '.safetensors':
        return {}
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        header = f.metadata() or {}
    try:
        return json.loads(header.get('metadata', '{}'))
    except json.JSONDecodeError:
        return {}


def storage_dtypes(path: pathlib.Path) -> str:
    """Floating-point storage type(s) of a .safetensors file, e.g. 'float16'."""
    if path.suffix != '.safetensors':
        return 'float32 (torch file)'
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        dtypes = {str(f.get_slice(k).get_dtype()).lower() for k in f.keys()}
    names = {'f16': 'float16', 'bf16': 'bfloat16', 'f32': 'float32', 'f64': 'float64'}
    return '/'.join(sorted(names[d] for d in dtypes if d in names)) or 'none'


def file_digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bundle_key(bundle: pathlib.Path) -> str:
    """Cache key of a bundled file's metric results: a re-exported file gets new results."""
    return f'{bundle.name}@sha256:{file_digest(bundle)[:16]}'


def check_source(bundle: pathlib.Path, meta: dict, snapshot: pathlib.Path):
    """Refuse to write a card for a bundled file exported from another snapshot."""
    source = meta.get('source_snapshot')
    if source and source != snapshot.name:
        raise click.ClickException(f'{bundle} was exported from {source}, not {snapshot.name}; re-export it '
                                   f'with models/export_bundled.py or pass the matching --snapshot-kimg.')


# ---------------------------------------------------------------------------------------------
# Continued runs: a lost run restarted from its bundle (`models/train_bundled.sh transfer`).

TRANSFER_BASE = 'transfer-base.json'


@dataclasses.dataclass(frozen=True)
class TransferBase:
    kimg: float              # progress of the bundle the new run started from
    hours: float             # its training wall time
    quality_first: dict      # fd_mobilenet / swd of the original run's first snapshot (0 kimg)
    snapshot: str            # the original snapshot the bundle was exported from


def read_transfer_base(run_dir: pathlib.Path) -> TransferBase | None:
    """The bundle's JSON that `train_bundled.sh transfer` kept beside a continued run, else None.

    The bundle's kimg and hours count towards the new run's, and its first-snapshot quality stays
    the baseline: the new run's own first snapshot is the transferred bundle, not a random init.
    """
    path = pathlib.Path(run_dir).parent / TRANSFER_BASE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return TransferBase(kimg=float(data['kimg']), hours=float(data['train_hours']),
                            quality_first={'fd_mobilenet': float(data['fd_mobilenet_first']),
                                           'swd': float(data['swd_first'])},
                            snapshot=str(data['snapshot']))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise click.ClickException(f'{path} is not a bundled model\'s JSON (with kimg, train_hours, '
                                   f'fd_mobilenet_first, swd_first and snapshot).') from None


# ---------------------------------------------------------------------------------------------
# Metrics, cached in the run folder.

def cached_result(run_dir: pathlib.Path, metric: str, key: str, num_gen: int):
    """A previous result of `metric` for snapshot `key` with `num_gen` samples, or None.

    Records come from metrics.run_metric (this script, calc_metrics.py or training); calc_metrics
    stores the snapshot as the path it was given, so run snapshots match by file name.
    """
    path = run_dir / f'metric-{metric}.jsonl'
    if not path.is_file():
        return None
    for line in reversed(path.read_text().splitlines()):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        snap = rec.get('snapshot') or ''
        same = snap == key or ('@' not in key and pathlib.Path(snap).name == key)
        if same and rec.get('num_gen') == num_gen and rec.get('seed', 0) == 0 and rec.get('max_real') is None:
            value = (rec.get('results') or {}).get(metric)
            if value is not None:
                return float(value)
    return None


def measure(G, metric: str, key: str, num_gen: int, run_dir: pathlib.Path, dataset_kwargs: dict, device) -> float:
    return measure_all(G, [metric], key, num_gen, run_dir, dataset_kwargs, device)[metric]


def measure_all(G, names, key: str, num_gen: int, run_dir: pathlib.Path, dataset_kwargs: dict, device) -> dict:
    """{metric: value}: cached results where the run folder has them, the rest computed together
    (metrics.run_metrics: the EQ metrics share one pass over the generator)."""
    values = {}
    for metric in names:
        cached = cached_result(run_dir, metric, key, num_gen)
        if cached is not None:
            click.echo(f'{metric} of {key}: {cached:.4g} (cached in {run_dir.name}/metric-{metric}.jsonl)')
            values[metric] = cached
    todo = [metric for metric in names if metric not in values]
    if not todo:
        return values
    import metrics
    click.echo(f'measuring {", ".join(todo)} of {key} ({num_gen} samples)...')
    runs = metrics.run_metrics(todo, G=G, dataset_kwargs=dataset_kwargs, num_gen=num_gen, device=device,
                               run_dir=run_dir, snapshot=key)
    for metric in todo:
        try:
            _, results = next(runs)
        except (ValueError, FileNotFoundError) as exc:
            raise click.ClickException(f'{metric} of {key}: {exc}') from None
        click.echo(f'{metric} of {key}: {results[metric]:.4g}')
        values[metric] = float(results[metric])
    return values


def render_speed(network: pathlib.Path, frames: int) -> dict:
    """benchmarks/visualizer.py's renderer measurement, one torch thread (the visualizer's share of 2 cores)."""
    import torch
    spec = importlib.util.spec_from_file_location('bench_visualizer', REPO / 'benchmarks' / 'visualizer.py')
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    try:
        # Wall-clock FPS depends on what else runs; the load average says how busy the cores were.
        return dict(bench.bench_renderer(str(network), frames, 1), load_average=os.getloadavg()[0])
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# Outputs.

def rounded(value, digits=2):
    return None if value is None else round(float(value), digits)


def fall(first, last) -> float | None:
    """first / last: how many times smaller the metric got (>= 2 means it fell by at least half)."""
    if first is None or last is None or last <= 0:
        return None
    return first / last


@dataclasses.dataclass
class Measurements:
    name: str
    snapshot: pathlib.Path
    options: dict
    num_real: int
    quality: dict            # metric -> value of the bundled file
    quality_first: dict      # metric -> value of the first snapshot
    eq: dict                 # metric -> dB, or None
    eq_samples: int | None
    num_gen: int
    speed: dict | None
    time: TrainingTime       # including the bundle a continued run started from
    base: TransferBase | None
    bundle: pathlib.Path
    storage: str
    num_params: int
    g_kwargs: dict
    d_kwargs: dict
    final: bool
    description: str | None
    data_description: str
    machine: str
    command: str


def eq_note(eq_samples: int | None) -> str:
    """The JSON notes' sentence on the EQ sample count ('' for the full 50k metrics)."""
    if eq_samples is None:
        return 'EQ metrics not measured.'
    if eq_samples < FULL_EQ_SAMPLES:
        return f'EQ metrics with {eq_samples} samples: a reduced-count stand-in for the 50k metrics.'
    return ''


EQ_NOTE = re.compile(r'EQ metrics (not measured|with \d+ samples: a reduced-count stand-in for the 50k metrics)\. ?')


def eq_rows(eq: dict, eq_samples: int | None, command: str = '') -> list[str]:
    """The model card's metric-table rows of the EQ metrics; `command` names a later measurement."""
    if eq_samples is None:
        return ['| eqt50k_int / eqt50k_frac / eqr50k | not measured | |']
    reduced = (f'{eq_samples} samples (reduced-count stand-in for 50k)' if eq_samples < FULL_EQ_SAMPLES
               else f'{eq_samples} samples')
    by = f', measured later with `{command}`' if command else ''
    return [f'| {k} | {fmt(eq.get(k), 2, " dB")} | PSNR, {reduced}{by} |' for k in EQ_METRICS]


EQ_ROW = re.compile(r'^\| (eqt50k_int|eqt50k_frac|eqr50k|eqt50k_int / eqt50k_frac / eqr50k) \|')


def metrics_notes(m: Measurements) -> str:
    parts = ['Final snapshot.' if m.final else 'INTERIM snapshot, training continues.',
             f'fd_mobilenet and swd with {m.num_gen} generated images vs {m.num_real} real '
             f'({"with x-flips" if m.options["training_set_kwargs"].get("xflip") else "no flips"}).']
    if note := eq_note(m.eq_samples):
        parts.append(note)
    parts.append(f'render_fps: visualizer Renderer, 1 torch thread, load average {m.speed["load_average"]:.1f}.'
                 if m.speed else 'render_fps not measured.')
    return ' '.join(parts)


def metrics_json(m: Measurements) -> dict:
    return {
        'fd_mobilenet': rounded(m.quality['fd_mobilenet']),
        'swd': rounded(m.quality['swd']),
        **{k: rounded(m.eq.get(k)) for k in EQ_METRICS},
        'kimg': round(m.time.kimg, 1),
        'train_hours': round(m.time.hours, 2),
        'render_fps': rounded(m.speed and m.speed['render_fps']),
        'interim': not m.final,
        'eq_num_samples': m.eq_samples,
        'metrics_num_gen': m.num_gen,
        'fd_mobilenet_first': rounded(m.quality_first['fd_mobilenet']),
        'swd_first': rounded(m.quality_first['swd']),
        'render_cpu_ms': rounded(m.speed and m.speed['render_cpu_ms']),
        'snapshot': f'{m.snapshot.parent.parent.name}/{m.snapshot.parent.name}/{m.snapshot.name}',
        **({'continued_from': m.base.snapshot} if m.base else {}),
        'notes': metrics_notes(m),
    }


def atomic_write_text(path: pathlib.Path, text: str):
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    tmp.write_text(text)
    os.replace(tmp, path)


def fmt(value, digits=1, unit='') -> str:
    return 'not measured' if value is None else f'{value:.{digits}f}{unit}'


def number(value) -> str:
    return f'{value:g}' if isinstance(value, (int, float)) else str(value)


def train_command(options: dict) -> str:
    """The train.py network/training options of the run, as recorded in training_options.json."""
    net, aug = options.get('network') or {}, options.get('augment') or {}
    gamma = (options.get('loss') or {}).get('r1_gamma')
    parts = [f'--cfg {net.get("cfg")}', f'--cbase {net.get("cbase")}', f'--cmax {net.get("cmax")}']
    if net.get('sg3_layers') and str(net.get('cfg')).startswith('stylegan3'):
        parts.append(f'--sg3-layers {net["sg3_layers"]}')
    parts += [f'--map-depth {net.get("map_depth")}', f'--w-dim {net.get("w_dim")}',
              f'--batch {options.get("batch_size")}', f'--gamma {gamma:g}' if gamma is not None else '',
              f'--mirror {int(bool(options["training_set_kwargs"].get("xflip")))}', f'--aug {aug.get("mode", "noaug")}']
    if aug.get('mode') == 'ada' and aug.get('ada_kimg') is not None:
        parts.append(f'--ada-kimg {aug["ada_kimg"]:g}')
    return 'train.py ' + ' '.join(p for p in parts if p)


def card_config(m: Measurements) -> str:
    aug, g, d = m.options.get('augment') or {}, m.g_kwargs, m.d_kwargs
    gamma = (m.options.get('loss') or {}).get('r1_gamma')
    g_layers = f', {g["num_layers"]} synthesis layers' if 'num_layers' in g else ''
    ada = (f' (target {number(aug.get("target"))}, --ada-kimg {number(aug.get("ada_kimg"))})'
           if aug.get('mode') == 'ada' else '')
    size = m.bundle.stat().st_size
    rows = [('G channels', f'channel_base {g.get("channel_base")}, channel_max {g.get("channel_max")}{g_layers}'),
            ('D channels', f'channel_base {d.get("channel_base")}, channel_max {d.get("channel_max")}' if d else '?'),
            ('z / w', f'{g.get("z_dim")} / {g.get("w_dim")}, '
                      f'{(g.get("mapping_kwargs") or {}).get("num_layers", "?")} mapping layers'),
            ('G parameters', f'{m.num_params / 1e6:.2f} M ({m.num_params})'),
            ('batch, R1 gamma', f'{m.options.get("batch_size")}, {number(gamma)}'),
            ('augmentation', f'{aug.get("mode", "none")}{ada}'),
            ('bundled file', f'`{m.bundle.name}`: {m.storage} storage, {size} bytes ({size / 2**20:.2f} MiB)')]
    return '\n'.join(['## Configuration', '',
                      f'`{train_command(m.options)}` (as recorded in the run\'s `training_options.json`):', '',
                      '| | |', '| --- | --- |', *[f'| {k} | {v} |' for k, v in rows], ''])


def card_training(m: Measurements) -> str:
    t = m.time
    lost = f'; {t.lost_hours:.2f} h of ticks redone after resumes not counted' if t.lost_hours > 0.005 else ''
    rows = [('kimg', f'{t.kimg:.1f} (tick {t.tick}, `{m.snapshot.name}`)'),
            ('wall time', f'{t.hours:.2f} h over {t.processes} training process(es){lost}'),
            ('machine', m.machine)]
    if m.base:
        rows.insert(1, ('continued from', f'`{m.base.snapshot}` ({m.base.kimg:.1f} kimg, {m.base.hours:.2f} h, '
                                          'counted above): this run started from that bundled G_ema with '
                                          '`models/train_bundled.sh transfer` (new D, optimisers and ADA p)'))
    if t.sec_per_kimg is not None:
        rows.append(('s / kimg', f'{t.sec_per_kimg:.0f} (median over ticks)'))
    return '\n'.join(['## Training', '', '| | |', '| --- | --- |', *[f'| {k} | {v} |' for k, v in rows], '',
                      'Wall time is summed from log.txt\'s per-tick times over all processes of the run '
                      '(it was stopped and resumed exactly); process start-up is not included.', ''])


def card_metrics(m: Measurements) -> str:
    flips = 'with x-flips' if m.options['training_set_kwargs'].get('xflip') else 'no flips'
    rows = []
    for k in QUALITY_METRICS:
        first, last = m.quality_first[k], m.quality[k]
        ratio = fall(first, last)
        to = '' if ratio is None else f' (to {100 / ratio:.0f} %)'
        rows.append(f'| {k} | {fmt(last)} | {fmt(first)} at 0 kimg; fell {fmt(ratio, 2)}x{to}; '
                    f'{m.num_gen} generated vs {m.num_real} real ({flips}) |')
    rows += eq_rows(m.eq, m.eq_samples)
    if m.speed:
        rows.append(f'| render FPS | {m.speed["render_fps"]:.1f} | visualizer Renderer (`benchmarks/visualizer.py`), '
                    f'1 thread; CPU {m.speed["render_cpu_ms"]:.1f} ms / frame '
                    f'(≈ {1000 / m.speed["render_cpu_ms"]:.0f} FPS on a free core); load average '
                    f'{m.speed["load_average"]:.1f} while measuring |')
    else:
        rows.append('| render FPS | not measured | |')
    title = '## Metrics' + ('' if m.final else ' (interim)')
    return '\n'.join([title, '', '| metric | value | note |', '| --- | --- | --- |', *rows, '',
                      f'fd_mobilenet / swd: lower is better ("fell Nx" = first-snapshot value / this value); '
                      'EQ: higher is better. The same numbers are in '
                      f'`{m.name}.json`.', ''])


def card_sticking(models_dir: pathlib.Path) -> str:
    present = [p for p in STICKING_PANELS if (models_dir / p).is_file()]
    if not present:
        return ''
    images = '\n\n'.join(f'![{p[:-4]}]({p})' for p in present)
    return '\n'.join(['## Texture sticking', '',
                      'Panels of `gen_video.py --mode average` and `--mode strips` comparing the bundled '
                      'StyleGAN2 (Fourier input), StyleGAN3-T and StyleGAN3-R models while the input is '
                      'translated: details that stay fixed to the pixel grid instead of moving with the '
                      'object are texture sticking (StyleGAN3 paper, Fig. 1).', '', images, ''])


def model_card(m: Measurements, models_dir: pathlib.Path) -> str:
    cfg = m.options.get('network', {}).get('cfg', '?')
    data = m.options['training_set_kwargs']
    res = data.get('resolution') or m.g_kwargs.get('img_resolution')
    title = f'# {m.name} — {CFG_TITLES.get(cfg, cfg)}, {res}x{res}' + ('' if m.final else ' (INTERIM)')
    head = [title, '']
    if not m.final:
        head += [f'**Interim snapshot: training continues across sessions** (docs/bundled-models.md). This file '
                 f'is the G_ema of `{metrics_json(m)["snapshot"]}` at **{m.time.kimg:.1f} kimg**.', '']
    if m.description:
        head += [m.description.strip(), '']
    head += [f'![samples: seeds 0-63, psi 1 (left) and psi 0.7 (right)]({m.name}.grid.png)', '']
    n = m.num_real // 2 if data.get('xflip') else m.num_real
    flips = f', x-flips on ({m.num_real})' if data.get('xflip') else ''
    head += ['## Data and commands', '',
             f'{m.data_description}: `{pathlib.Path(str(data.get("path"))).name}`, {n} images, {res}x{res}{flips}. '
             'The exact dataset, training and resume commands are in `models/train_bundled.sh`; the file was '
             'exported with `models/export_bundled.py` and measured with:', '', '```', m.command, '```', '']
    parts = [card_config(m), card_training(m), card_metrics(m), card_sticking(models_dir)]
    return '\n'.join(head) + '\n' + '\n'.join(p for p in parts if p).rstrip() + '\n'


# ---------------------------------------------------------------------------------------------
# CLI.

def load_first_quality(run_dir, num_gen, dataset_kwargs, device) -> dict:
    """fd_mobilenet and swd of the run's first snapshot (cached per snapshot in the run folder)."""
    from torch_utils import network_files
    first = run_dir / FIRST_SNAPSHOT
    if not first.is_file():
        raise click.ClickException(f'{run_dir} has no {FIRST_SNAPSHOT} (the first snapshot the card compares with).')
    G = None
    out = {}
    for metric in QUALITY_METRICS:
        if cached_result(run_dir, metric, FIRST_SNAPSHOT, num_gen) is None and G is None:
            G = network_files.load_generator(first)
        out[metric] = measure(G, metric, FIRST_SNAPSHOT, num_gen, run_dir, dataset_kwargs, device)
    return out


def snapshot_info(snapshot: pathlib.Path) -> tuple[float | None, dict]:
    """(exact kimg from the metadata or None, D's init kwargs): file names round progress down to whole kimg."""
    import torch
    data = torch.load(snapshot, map_location='cpu', weights_only=True, mmap=True)
    nimg = (data.get('metadata') or {}).get('cur_nimg')
    d_kwargs = (data.get('D') or {}).get('init_kwargs') or {}
    return (nimg / 1000 if nimg is not None else None), d_kwargs


@click.command(help=__doc__)
@click.option('--name', required=True, help='Bundled model name, e.g. emoji-sg3t.')
@click.option('--run', 'run_dir', required=True, type=click.Path(path_type=pathlib.Path), help='Training run folder.')
@click.option('--snapshot-kimg', type=click.IntRange(min=0), required=True,
              help='N of the run\'s network-snapshot-N.pt the bundled file was exported from.')
@click.option('--num-gen', type=click.IntRange(min=2), default=1000, show_default=True,
              help='Generated images for fd_mobilenet and swd.')
@click.option('--eq-samples', type=click.IntRange(min=1), default=2000, show_default=True,
              help='Samples of each EQ metric (50000 = the full metric).')
@click.option('--skip-eq', is_flag=True, help='Do not measure the EQ metrics (null in the JSON).')
@click.option('--skip-fps', is_flag=True, help='Do not measure render FPS (null in the JSON).')
@click.option('--fps-frames', type=click.IntRange(min=1), default=30, show_default=True,
              help='Frames rendered for FPS.')
@click.option('--final', is_flag=True, help='The last snapshot of the model: no interim warning, interim false.')
@click.option('--description', default=None, help='One paragraph describing what the samples look like.')
@click.option('--data-description', default=None,
              help='Where the training images come from [default: the "dataset" note export_bundled.py stored].')
@click.option('--machine', default='2 CPU cores', show_default=True, help='Training machine for the card.')
@click.option('--models-dir', type=click.Path(file_okay=False, path_type=pathlib.Path), default=MODELS,
              show_default=True, help='Folder of the bundled file; the JSON and card are written there.')
@click.option('--device', default='auto', show_default=True, help='Device of the metrics: auto, cpu or cuda[:N].')
def main(name, run_dir, snapshot_kimg: int, num_gen, eq_samples, skip_eq, skip_fps, fps_frames, final,
         description, data_description, machine, models_dir, device):
    from torch_utils import network_files
    from torch_utils.misc import resolve_device

    inputs = open_inputs(name, run_dir, snapshot_kimg, models_dir)
    try:
        device = resolve_device(device)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    data_kwargs, bundle = inputs['dataset_kwargs'], inputs['bundle']
    G = network_files.load_generator(bundle)
    key = bundle_key(bundle)
    quality = {k: measure(G, k, key, num_gen, run_dir, data_kwargs, device) for k in QUALITY_METRICS}
    base = inputs['base']
    quality_first = base.quality_first if base else load_first_quality(run_dir, num_gen, data_kwargs, device)
    eq = {} if skip_eq else measure_equivariance(G, name, key, eq_samples, run_dir, device)
    speed = None if skip_fps else render_speed(bundle, fps_frames)
    m = Measurements(
        name=name, snapshot=inputs['snapshot'], options=inputs['options'], num_real=inputs['num_real'],
        quality=quality, quality_first=quality_first, eq=eq, eq_samples=eq_samples if eq else None,
        num_gen=num_gen, speed=speed, time=inputs['time'], base=base, bundle=bundle, storage=storage_dtypes(bundle),
        num_params=sum(p.numel() for p in G.parameters()), g_kwargs=network_files.network_record(G)['init_kwargs'],
        d_kwargs=inputs['d_kwargs'], final=final, description=description,
        data_description=data_description or inputs['data_note'] or 'Training images',
        machine=machine, command=reproduce_command(name, run_dir, snapshot_kimg, num_gen, eq_samples, skip_eq, final))
    data = metrics_json(m)
    atomic_write_text(models_dir / f'{name}.json', json.dumps(data, indent=2) + '\n')
    atomic_write_text(models_dir / f'{name}.md', model_card(m, models_dir))
    click.echo(json.dumps(data))


def open_inputs(name, run_dir: pathlib.Path, kimg: int, models_dir: pathlib.Path) -> dict:
    """Check everything the measurement needs before any slow step; one-sentence errors."""
    options = read_run(run_dir)
    snapshot = require_snapshot(run_dir, kimg)
    bundle = bundled_file(models_dir, name)
    meta = export_metadata(bundle)
    check_source(bundle, meta, snapshot)
    base = read_transfer_base(run_dir)
    log = run_dir / 'log.txt'
    if not log.is_file():
        raise click.ClickException(f'{run_dir} has no log.txt (needed for the training time).')
    dataset_kwargs = dict(options.get('training_set_kwargs') or {})
    if not dataset_kwargs.get('path') or not pathlib.Path(dataset_kwargs['path']).exists():
        raise click.ClickException(f'the run\'s dataset {dataset_kwargs.get("path")} does not exist.')
    from metrics.data import open_dataset
    try:
        exact, d_kwargs = snapshot_info(snapshot)
        exact = float(kimg) if exact is None else exact
        time = training_time(log.read_text(), exact)
        if base is not None:
            time = dataclasses.replace(time, kimg=base.kimg + time.kimg, hours=base.hours + time.hours)
        num_real = len(open_dataset(dataset_kwargs))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return dict(options=options, snapshot=snapshot, bundle=bundle, time=time, base=base, d_kwargs=d_kwargs,
                dataset_kwargs=dataset_kwargs, num_real=num_real, data_note=meta.get('dataset'))


def measure_equivariance(G, name, key, samples, run_dir, device) -> dict:
    """EQ-T (integer, fractional) and EQ-R PSNRs; {} for a generator without an input transform."""
    from metrics import equivariance
    if not equivariance.supports_equivariance(G):
        click.echo(f'{name} has no input transform: EQ metrics do not apply.')
        return {}
    return measure_all(G, EQ_METRICS, key, samples, run_dir, None, device)


# The EQ metrics run as two independent passes of metrics/equivariance.py, each from the same seed:
# the translations share one, the rotation has its own. Run side by side, they give exactly the
# values of one process, in about half the time on 2 cores (one torch thread each scales better
# than one process with two threads).
EQ_STREAMS = (('eqt50k_int', 'eqt50k_frac'), ('eqr50k',))


def _measure_eq_stream(bundle: pathlib.Path, names, samples: int, cache_dir: pathlib.Path, device: str):
    import torch
    from torch_utils import network_files
    torch.set_num_threads(1)
    G = network_files.load_generator(bundle)
    measure_all(G, list(names), bundle_key(bundle), samples, cache_dir, None, device)


def _thread_lock_for_progress_bars() -> None:
    """Give a worker's tqdm bars a thread lock: the multiprocessing lock tqdm makes by default is
    left to the parent's resource tracker when the pool ends ("leaked semaphore objects")."""
    import threading
    from tqdm import tqdm
    tqdm.set_lock(threading.RLock())


def cache_equivariance_in_parallel(bundle: pathlib.Path, samples: int, cache_dir: pathlib.Path, device) -> None:
    """Measure the EQ metrics of a bundled file into `cache_dir`, one process per pass."""
    import multiprocessing
    ctx = multiprocessing.get_context('spawn')    # not fork: torch's thread pools do not survive it
    with ctx.Pool(len(EQ_STREAMS), initializer=_thread_lock_for_progress_bars) as pool:
        pool.starmap(_measure_eq_stream, [(bundle, names, samples, cache_dir, str(device)) for names in EQ_STREAMS])


def reproduce_command(name, run_dir, kimg, num_gen, eq_samples, skip_eq, final) -> str:
    parts = ['python models/measure_bundled.py', f'--name {shlex.quote(name)}', f'--run {shlex.quote(str(run_dir))}',
             f'--snapshot-kimg {kimg}', f'--num-gen {num_gen}',
             '--skip-eq' if skip_eq else f'--eq-samples {eq_samples}']
    if final:
        parts.append('--final')
    return ' \\\n    '.join(parts)


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # render FPS as the visualizer gets it (tuned malloc)
    main()
