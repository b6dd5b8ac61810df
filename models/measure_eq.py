"""Measure a bundled model's EQ metrics and update its metrics JSON and model card in place.

    python models/measure_eq.py --name emoji-sg3t [--eq-samples 50000] [--jobs 2]

The full 50k-sample EQ metrics take about 1.5-3 hours per StyleGAN3 model on one CPU core (machine-dependent), so
models/measure_bundled.py writes the card with a reduced sample count and this tool adds the
full count later, from the bundled file alone: it needs neither the training run nor the
dataset. It measures eqt50k_int, eqt50k_frac and eqr50k of models/<name>.safetensors and
replaces the EQ values, `eq_num_samples` and the notes' EQ sentence in models/<name>.json and
the EQ rows of the metrics table in models/<name>.md; every other line stays as it was.
Results are cached in --cache-dir by file name + content hash and sample count, so a rerun or
an interrupted session does not measure again.
"""

import json
import pathlib
import sys

import click

MODELS = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(MODELS.parent), str(MODELS)]   # the repo's packages and measure_bundled beside this file

import measure_bundled as mb  # noqa: E402

def read_outputs(models_dir: pathlib.Path, name: str) -> tuple[dict, str]:
    """The model's metrics JSON and card as measure_bundled.py wrote them; one sentence if unusable."""
    json_path, card_path = models_dir / f'{name}.json', models_dir / f'{name}.md'
    for path in (json_path, card_path):
        if not path.is_file():
            raise click.ClickException(f'{path} does not exist; write it first with models/measure_bundled.py.')
    try:
        data = json.loads(json_path.read_text())
    except json.JSONDecodeError:
        raise click.ClickException(f'{json_path} is not valid JSON.') from None
    card = card_path.read_text()
    if not any(mb.EQ_ROW.match(line) for line in card.splitlines()):
        raise click.ClickException(f'{card_path} has no EQ rows in its metrics table to update.')
    return data, card


def updated_json(data: dict, eq: dict, samples: int) -> dict:
    """The JSON with new EQ values and count; the notes' EQ sentence (before render_fps') replaced."""
    notes = mb.EQ_NOTE.sub('', data.get('notes', '')).strip()
    note = mb.eq_note(samples)
    if note:
        at = notes.find('render_fps')
        notes = f'{notes[:at]}{note} {notes[at:]}' if at >= 0 else f'{notes} {note}'.strip()
    return {**data, **{k: mb.rounded(eq.get(k)) for k in mb.EQ_METRICS}, 'eq_num_samples': samples, 'notes': notes}


def updated_card(card: str, eq: dict, samples: int, command: str) -> str:
    """The card with its EQ rows (one 'not measured' row, or one per metric) replaced in place; the
    rows name `command`, as the card's measure_bundled.py command has another EQ sample count."""
    lines = card.split('\n')
    first = next(i for i, line in enumerate(lines) if mb.EQ_ROW.match(line))
    kept = [line for line in lines if not mb.EQ_ROW.match(line)]
    kept[first:first] = mb.eq_rows(eq, samples, command)     # every removed row was at or after `first`
    return '\n'.join(kept)


@click.command(help=__doc__)
@click.option('--name', required=True, help='Bundled model name, e.g. emoji-sg3t.')
@click.option('--eq-samples', type=click.IntRange(min=1), default=mb.FULL_EQ_SAMPLES, show_default=True,
              help='Samples of each EQ metric (50000 = the full metric).')
@click.option('--models-dir', type=click.Path(file_okay=False, path_type=pathlib.Path), default=MODELS,
              show_default=True, help='Folder of the bundled file, its JSON and card.')
@click.option('--cache-dir', type=click.Path(file_okay=False, path_type=pathlib.Path), default=None,
              help='Where results are cached (metric-<metric>.jsonl) [default: bundled-metrics/ in '
                   '$STYLEGAN_CACHE_DIR, else ~/.cache/stylegan-toolkit].')
@click.option('--device', default='auto', show_default=True, help='Device of the metrics: auto, cpu or cuda[:N].')
@click.option('--jobs', type=click.IntRange(1, len(mb.EQ_STREAMS)), default=1, show_default=True,
              help='Processes: 2 measures EQ-T (int and frac) and EQ-R side by side, one torch thread each '
                   '(same values, about half the time on 2 cores).')
def main(name, eq_samples, models_dir, cache_dir, device, jobs):
    from metrics import equivariance
    from metrics.features import default_cache_dir
    from torch_utils import network_files
    from torch_utils.misc import resolve_device
    bundle = mb.bundled_file(models_dir, name)
    read_outputs(models_dir, name)   # refuse unusable files before hours of measuring
    try:
        device = resolve_device(device)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    G = network_files.load_generator(bundle)
    cache_dir = cache_dir or default_cache_dir() / 'bundled-metrics'
    cache_dir.mkdir(parents=True, exist_ok=True)
    if jobs > 1 and equivariance.supports_equivariance(G):
        mb.cache_equivariance_in_parallel(bundle, eq_samples, cache_dir, device)   # then read back below
    eq = mb.measure_equivariance(G, name, mb.bundle_key(bundle), eq_samples, cache_dir, device)
    if not eq:
        raise click.ClickException(f'{name} has no input transform, so it has no EQ metrics to update.')
    data, card = read_outputs(models_dir, name)   # as they are now: they may have been rewritten meanwhile
    new = updated_json(data, eq, eq_samples)
    mb.atomic_write_text(models_dir / f'{name}.json', json.dumps(new, indent=2) + '\n')
    command = f'python models/measure_eq.py --name {name}' + (
        f' --eq-samples {eq_samples}' if eq_samples != mb.FULL_EQ_SAMPLES else '')
    mb.atomic_write_text(models_dir / f'{name}.md', updated_card(card, eq, eq_samples, command))
    click.echo(json.dumps({k: new[k] for k in (*mb.EQ_METRICS, 'eq_num_samples')}))


if __name__ == '__main__':
    main()
