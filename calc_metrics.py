"""Compute quality and equivariance metrics of a trained generator.

\b
Examples:
  # Equivariance of a StyleGAN3 network (no dataset, no download needed):
  python calc_metrics.py --network runs/00000-.../network-snapshot-000100.pt --metrics eqt50k_int,eqr50k
  # Offline quality metrics against a dataset, small quick run:
  python calc_metrics.py --network model.pkl --data data/faces.zip --metrics swd,fd_mobilenet --num-gen 1000
  # FID (needs inception-2015-12-05.pkl in --detector-dir or $STYLEGAN_DETECTOR_DIR when offline):
  python calc_metrics.py --network model.pkl --data data/faces.zip --mirror 1 --metrics fid50k_full

\b
Metrics: fid50k_full kid50k_full pr50k3_full is50k ppl2_wend eqt50k_int eqt50k_frac eqr50k swd fd_mobilenet
When --network is a snapshot of a training run, --data and --mirror default to that run's dataset
(from the network file, else the run's training_options.json). Each result is printed and
appended to metric-<name>.jsonl next to the network (or in --out).
"""

import json
import pathlib

import click

from torch_utils.misc import resolve_device


def run_dataset_kwargs(network_path: str, snapshot_kwargs: dict | None) -> dict | None:
    """The training dataset of a run snapshot: from the file, else the run's training_options.json."""
    if snapshot_kwargs:
        return dict(snapshot_kwargs)
    options = pathlib.Path(network_path).expanduser().parent / 'training_options.json'
    if options.is_file():
        try:
            kwargs = json.loads(options.read_text()).get('training_set_kwargs')
        except json.JSONDecodeError:
            raise click.ClickException(f'{options} is not valid JSON.') from None
        return dict(kwargs) if kwargs else None
    return None


def resolve_dataset_kwargs(data, mirror, network_path, snapshot_kwargs, conditional: bool) -> dict | None:
    """--data / --mirror override the run's dataset; labels are read for conditional networks."""
    kwargs = run_dataset_kwargs(network_path, snapshot_kwargs) or {}
    if data is not None:
        kwargs = {'path': data, 'use_labels': conditional}
    if mirror is not None:
        kwargs['xflip'] = bool(mirror)
    return kwargs or None


def parse_metric_list(text: str) -> list[str]:
    import metrics
    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in names if not metrics.is_valid_metric(name)]
    if not names or unknown:
        raise click.BadParameter(f'unknown metric(s) {", ".join(unknown) or "(none given)"}; '
                                 f'choose from {", ".join(metrics.list_metrics())}.', param_hint='--metrics')
    return names


@click.command(help=__doc__)
@click.option('--network', 'network_path', required=True, help='Network file (.pt, .pkl, .safetensors) or bundled model name.')
@click.option('--metrics', 'metric_text', default='fid50k_full', show_default=True, help='Comma-separated metric names.')
@click.option('--data', type=str, default=None, help='Dataset folder or zip (default: the run\'s training data).')
@click.option('--mirror', type=click.Choice(['0', '1']), default=None, help='Add x-flipped images to the dataset.')
@click.option('--device', default='auto', show_default=True, help='auto, cpu or cuda[:N].')
@click.option('--num-gen', type=click.IntRange(min=2), default=None, help='Generated samples (override the metric\'s 50k).')
@click.option('--max-real', type=click.IntRange(min=2), default=None, help='Real images used at most (override).')
@click.option('--batch', 'batch_size', type=click.IntRange(min=1), default=None, help='Batch size (default: per metric).')
@click.option('--detector-dir', type=str, default=None, help='Folder of detector files (else $STYLEGAN_DETECTOR_DIR).')
@click.option('--out', type=str, default=None, help='Folder for metric-<name>.jsonl (default: next to the network).')
@click.option('--seed', type=int, default=0, show_default=True, help='Seed of latents, transforms and subsets.')
def main(network_path, metric_text, data, mirror, device, num_gen, max_real, batch_size, detector_dir, out, seed):
    import metrics
    from metrics.detectors import DetectorUnavailable
    from torch_utils import network_files

    names = parse_metric_list(metric_text)
    try:
        device = resolve_device(device)
        loaded = network_files.load_network(network_path, device='cpu')
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    G = loaded['G_ema'] or loaded['G']
    if G is None:
        raise click.ClickException(f'{network_path} contains no generator.')
    dataset_kwargs = resolve_dataset_kwargs(data, mirror, network_path, loaded.get('training_set_kwargs'),
                                            G.c_dim > 0)
    out_dir = pathlib.Path(out) if out else _default_out_dir(network_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = metrics.run_metrics(names, G=G, dataset_kwargs=dataset_kwargs, num_gen=num_gen, max_real=max_real,
                               batch_size=batch_size, device=device, detector_dir=detector_dir, seed=seed,
                               run_dir=out_dir, snapshot=network_path)
    for name in names:   # the equivariance metrics among them share one pass
        try:
            _, results = next(runs)
        except (ValueError, DetectorUnavailable, FileNotFoundError) as exc:
            raise click.ClickException(f'{name}: {exc}') from None
        click.echo(json.dumps({'metric': name, 'results': results}))


def _default_out_dir(network_path: str) -> pathlib.Path:
    path = pathlib.Path(network_path).expanduser()
    if path.is_file():
        return path.parent
    return pathlib.Path('.')   # bundled names and random:<cfg> networks: the current folder


if __name__ == '__main__':
    from torch_utils import cpu_memory
    cpu_memory.keep_freed_memory()  # reuse freed tensor memory: fewer page faults (see there)
    main()
