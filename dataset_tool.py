"""Convert image collections into training datasets (a folder or zip of PNGs + dataset.json).

Sources (`--source`, the kind is recognised automatically):

\b
  folder or .zip         PNG/JPEG images at any depth; labels from its dataset.json, if any
  MNIST folder           train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz];
                         28x28 digits padded to 32x32; class labels 0-9
  cifar-10-python.tar.gz the python version of CIFAR-10 (data_batch_1..5); class labels 0-9
  NotoColorEmoji.ttf     the colour bitmaps of the Noto Color Emoji font (or --source emoji
                         to use the installed font); 136x128 bitmaps padded to 136x136

Examples:

\b
  python dataset_tool.py --source ~/mnist --dest mnist32.zip
  python dataset_tool.py --source emoji --subset faces-people --resolution 64x64 --dest faces64.zip
  python dataset_tool.py --source ~/photos --dest photos256 --transform center-crop --resolution 256x256
"""

import io
import json
import os
import pathlib
import re
import shutil
import tempfile
import zipfile

import click
import PIL.Image
import tqdm

from training import dataset_sources as sources

# ----------------------------------------------------------------------------------------------
# Transforms: each maps a PIL image to the final PIL image.


def parse_resolution(text):
    """'64x64' -> (64, 64); None stays None."""
    if text is None:
        return None
    match = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', text)
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise click.BadParameter(f'"{text}" is not a size like 64x64.', param_hint='--resolution')
    return int(match.group(1)), int(match.group(2))


def make_transform(transform, resolution):
    """Return a function PIL.Image -> PIL.Image, after checking the option combination."""
    if transform is not None and resolution is None:
        raise click.UsageError(f'--transform {transform} needs --resolution WxH.')
    if resolution is None:
        return lambda img: img
    width, height = resolution
    if transform == 'center-crop-wide':
        return lambda img: _center_crop_wide(img, width, height)
    if width != height:
        raise click.UsageError(f'--resolution {width}x{height} is not square; training needs square '
                               f'images (use --transform center-crop-wide for wide images).')
    if transform == 'center-crop':
        return lambda img: _resize(_crop_to_aspect(img, 1.0), width, height)
    return lambda img: _resize(img, width, height)


def _resize(img, width, height):
    if img.size == (width, height):
        return img
    return img.resize((width, height), PIL.Image.LANCZOS)


def _crop_to_aspect(img, aspect):
    """Largest centred crop with width / height == aspect."""
    w, h = img.size
    cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


def _center_crop_wide(img, width, height):
    """Crop to the W:H aspect, resize to WxH and centre it on a black WxW square canvas."""
    wide = _resize(_crop_to_aspect(img, width / height), width, height)
    canvas = PIL.Image.new(img.mode, (width, width))
    canvas.paste(wide, (0, (width - height) // 2))
    return canvas


# ----------------------------------------------------------------------------------------------
# Writers: write under a temporary name, rename at the end so a failure leaves nothing half-done.

class _Writer:
    def __init__(self, dest: pathlib.Path):
        self.dest = dest
        self.is_zip = dest.suffix.lower() == '.zip'
        parent = dest.parent
        parent.mkdir(parents=True, exist_ok=True)
        if self.is_zip:
            fd, tmp = tempfile.mkstemp(prefix=f'.{dest.name}.', suffix='.tmp', dir=parent)
            os.close(fd)
            self.tmp = pathlib.Path(tmp)
            self._zip = zipfile.ZipFile(self.tmp, 'w', compression=zipfile.ZIP_STORED)
        else:
            self.tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{dest.name}.', suffix='.tmp', dir=parent))

        # mkstemp/mkdtemp create private (0600/0700) entries; give the result normal permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, (0o666 if self.is_zip else 0o777) & ~umask)

    def write(self, name: str, data: bytes):
        if self.is_zip:
            self._zip.writestr(name, data)
        else:
            path = self.tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def commit(self, replace: bool):
        if self.is_zip:
            self._zip.close()
        old = None
        if self.dest.exists() or self.dest.is_symlink():
            if not replace:
                raise click.ClickException(f'{self.dest} appeared while writing; nothing was replaced.')
            # Move the old dataset aside first so that at every moment one complete copy exists.
            old = self.dest.with_name(f'.{self.dest.name}.old-{os.getpid()}')
            os.replace(self.dest, old)
        os.replace(self.tmp, self.dest)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() else old.unlink()

    def abort(self):
        if self.is_zip:
            self._zip.close()
            self.tmp.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _encode_png(img: PIL.Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format='png', compress_level=6)
    return buf.getvalue()


def _check_consistent(img, first, index, source_name):
    """Every output image must share size and channels with the first one."""
    if first is None:
        if img.size[0] != img.size[1]:
            raise click.ClickException(
                f'{source_name} is {img.size[0]}x{img.size[1]} after transforms but training needs '
                f'square images; use --transform center-crop --resolution WxW.')
        return img.size, img.mode
    size, mode = first
    if img.size != size:
        raise click.ClickException(
            f'{source_name} is {img.size[0]}x{img.size[1]} after transforms but the first image is '
            f'{size[0]}x{size[1]}; use --resolution WxH to give all images one size.')
    if img.mode != mode:
        raise click.ClickException(
            f'{source_name} has pixel mode {img.mode} but the first image has {mode}; '
            f'convert the images to one kind (grayscale, RGB or RGBA) first.')
    return first


def convert(records, total, dest, transform, max_images, force):
    """Write transformed records to dest; return (count, (width, height), mode)."""
    writer = _Writer(dest)
    labels, first, count = [], None, 0
    total = total if max_images is None else min(total, max_images)
    try:
        for record in tqdm.tqdm(records, total=total, unit='img', desc='images'):
            if max_images is not None and count >= max_images:
                break
            img = transform(record.image)
            first = _check_consistent(img, first, count, record.name)
            archive_name = f'{count // 1000:05d}/img{count:08d}.png'
            writer.write(archive_name, _encode_png(img))
            if record.label is not None:
                labels.append([archive_name, record.label])
            count += 1
        if count == 0:
            raise click.ClickException('the source contains no images; nothing was written.')
        if labels and len(labels) != count:
            raise click.ClickException('only some source images have labels; nothing was written.')
        if labels:
            writer.write('dataset.json', json.dumps({'labels': labels}).encode())
        writer.commit(replace=force)
    except BaseException:
        writer.abort()
        raise
    return count, first[0], first[1]


# ----------------------------------------------------------------------------------------------

@click.command(help=__doc__)
@click.option('--source', required=True, metavar='PATH',
              help='Folder, zip, MNIST folder, cifar-10-python.tar.gz, NotoColorEmoji.ttf or "emoji".')
@click.option('--dest', required=True, metavar='PATH', help='Output folder, or a .zip file.')
@click.option('--resolution', metavar='WxH', help='Resize every image to this size, e.g. 64x64.')
@click.option('--transform', type=click.Choice(['center-crop', 'center-crop-wide']),
              help='Crop before resizing: center square, or W:H band on a square canvas.')
@click.option('--max-images', type=click.IntRange(min=1), help='Stop after this many images.')
@click.option('--subset', type=click.Choice(sources.EMOJI_SUBSETS), default='all', show_default=True,
              help='Emoji source only: every emoji, or only faces and people (see docs/data.md).')
@click.option('--keep-alpha', is_flag=True, help='Emoji source only: keep RGBA instead of compositing on white.')
@click.option('--force', is_flag=True, help='Replace --dest if it already exists.')
def main(source, dest, resolution, transform, max_images, subset, keep_alpha, force):
    dest = pathlib.Path(dest)
    if (dest.exists() or dest.is_symlink()) and not force:
        raise click.ClickException(f'{dest} already exists; use --force to replace it.')
    transform_fn = make_transform(transform, parse_resolution(resolution))
    try:
        kind, total, records = sources.open_source(source, subset=subset, keep_alpha=keep_alpha)
    except sources.SourceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f'{kind} source {source}: {total} images')
    try:
        count, size, mode = convert(records, total, dest, transform_fn, max_images, force)
    except sources.SourceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f'wrote {count} images ({size[0]}x{size[1]}, {mode}) to {dest}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
