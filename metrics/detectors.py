"""Feature detectors of the FID literature: locating, downloading into a cache dir, and loading.

A detector is a TorchScript module (the Inception-v3 of TF-FID translated to TorchScript, or
VGG16 with LPIPS heads) called on uint8-range NCHW images:

    inception(img, return_features=True)            -> [N, 2048] pool features   (FID, KID)
    inception(img, no_output_bias=True)             -> [N, 1008] logits          (IS)
    vgg16(img, return_features=True)                -> [N, 4096] fc features     (precision/recall)
    vgg16(img, resize_images=False, return_lpips=True) -> normalised LPIPS features (PPL)

Two file formats load: a TorchScript archive (`torch.jit.save`, a zip) and the `.pkl` form
distributed with the metric code of StyleGAN2-ADA/StyleGAN3, a pickle whose only job is to
rebuild a TorchScript module from its archive bytes. Pickles are read with a restricted
unpickler that permits just that rebuild; any other global is refused with a clear error.
`save_detector` writes the same `.pkl` form (tests use it for tiny stand-in detectors).

The search order for a named detector: `--detector-dir`, then `$STYLEGAN_DETECTOR_DIR`, then
`~/.cache/stylegan-toolkit/detectors`. Missing files are downloaded there unless offline
(`STYLEGAN_OFFLINE=1`) or the download fails; then one sentence says which file goes where.
"""

import dataclasses
import hashlib
import io
import os
import pathlib
import pickle
import tempfile
import urllib.request
import warnings

import torch

ENV_DIR = 'STYLEGAN_DETECTOR_DIR'
ENV_OFFLINE = 'STYLEGAN_OFFLINE'
_NGC = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/'


@dataclasses.dataclass(frozen=True)
class DetectorFile:
    name: str           # short name used by the metrics
    filename: str       # file name inside the detector dir
    url: str            # where the public file lives
    description: str


KNOWN = {
    'inception': DetectorFile('inception', 'inception-2015-12-05.pkl', _NGC + 'inception-2015-12-05.pkl',
                              'Inception-v3 feature detector'),
    'vgg16': DetectorFile('vgg16', 'vgg16.pkl', _NGC + 'vgg16.pkl', 'VGG16 (LPIPS) feature detector'),
}


class DetectorUnavailable(RuntimeError):
    """A detector file is neither on disk nor downloadable; the message says what to do."""


def default_detector_dir(detector_dir=None) -> pathlib.Path:
    if detector_dir:
        return pathlib.Path(detector_dir).expanduser()
    if os.environ.get(ENV_DIR):
        return pathlib.Path(os.environ[ENV_DIR]).expanduser()
    return pathlib.Path('~/.cache/stylegan-toolkit/detectors').expanduser()


def _is_url(text: str) -> bool:
    return str(text).startswith(('http://', 'https://'))


def resolve_detector(spec: str, detector_dir=None, allow_download: bool | None = None) -> pathlib.Path:
    """Local path of a detector given a known name ('inception', 'vgg16'), a path or a URL."""
    directory = default_detector_dir(detector_dir)
    if spec in KNOWN:
        entry = KNOWN[spec]
        path, url, what = directory / entry.filename, entry.url, entry.description
    elif _is_url(spec):
        path, url, what = directory / pathlib.PurePosixPath(spec.split('?')[0]).name, spec, 'detector'
    else:
        path = pathlib.Path(spec).expanduser()
        if not path.is_file():
            raise DetectorUnavailable(f'detector file {path} does not exist.')
        return path
    if path.is_file():
        return path
    if allow_download is None:
        allow_download = os.environ.get(ENV_OFFLINE, '') in ('', '0')
    if allow_download:
        try:
            _download(url, path)
            return path
        except OSError:
            pass
    raise DetectorUnavailable(f'The {what} is not available offline: download {url} and put it at '
                              f'{path} (or point --detector-dir / ${ENV_DIR} at a folder holding '
                              f'{path.name}).')


def _download(url: str, path: pathlib.Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ----------------------------------------------------------------------------------------------
# Loading.

class _ScriptArchive:
    """Pickles as 'call torch.jit.load on a BytesIO of the archive'."""

    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self):
        return torch.jit.load, (io.BytesIO(self.data),)


# Globals a detector pickle may call: rebuilding a TorchScript module from bytes, nothing else.
_ALLOWED_GLOBALS = {
    ('torch.jit', 'load'), ('torch.jit._serialization', 'load'),
    ('_io', 'BytesIO'), ('io', 'BytesIO'),
}


class _DetectorUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f'refusing to load {module}.{name}: a detector pickle may only rebuild a TorchScript module.')
        return super().find_class(module, name)


def load_detector(path, device='cpu') -> torch.jit.ScriptModule:
    """Load a detector file (TorchScript archive or detector pickle) onto `device`, in eval mode."""
    path = pathlib.Path(path)
    with open(path, 'rb') as f, warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)   # torch.jit.load: still the format in use
        head = f.read(4)
        f.seek(0)
        try:
            if head.startswith(b'PK'):
                module = torch.jit.load(f, map_location='cpu')
            else:
                module = _DetectorUnpickler(f).load()
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
            raise ValueError(f'{path} is not a loadable feature detector ({exc}).') from None
    if not isinstance(module, torch.jit.ScriptModule):
        raise ValueError(f'{path} does not contain a TorchScript module.')
    return module.eval().to(device)


def save_detector(module: torch.nn.Module, path):
    """Write `module` (scripted if needed) in the detector `.pkl` format; temp file + rename."""
    with warnings.catch_warnings():   # TorchScript is deprecated in new torch, but it is the format
        warnings.simplefilter('ignore', DeprecationWarning)
        scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + '.tmp')
    with open(tmp, 'wb') as f:
        pickle.dump(_ScriptArchive(buf.getvalue()), f, protocol=4)
    os.replace(tmp, path)


def file_digest(path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file: detector identity for statistics caches."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while data := f.read(chunk):
            h.update(data)
    return h.hexdigest()


@dataclasses.dataclass
class Detector:
    """A loaded detector plus the identity used in cache keys."""
    module: torch.nn.Module
    digest: str

    def __call__(self, images: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.module(images, **kwargs)


def get_detector(spec: str, detector_dir=None, device='cpu') -> Detector:
    path = resolve_detector(spec, detector_dir)
    return Detector(load_detector(path, device), file_digest(path))
