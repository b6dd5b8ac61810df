"""The Renderer: RenderArgs in, RenderResult out (DESIGN.md section 3). Pure torch, no GL.

The GUI runs it in a worker process (visualizer/async_renderer.py); gen_images.py and
gen_video.py may call it in-process. It never raises: errors come back in RenderResult.error.
"""

import re
import time
import traceback
from dataclasses import dataclass

import torch

from torch_utils import gen_utils
from torch_utils.misc import resolve_device
from visualizer import render_ops
from visualizer.render_args import NOISE_MODES, LayerInfo, RenderArgs, RenderResult

__all__ = ['Renderer', 'RenderArgs', 'RenderResult', 'LayerInfo', 'feature_layers']


def _default_loader(network: str, device: torch.device):
    from torch_utils.network_files import load_generator     # imported late: heavy, and optional for tests
    return load_generator(network, device=device)


def feature_layers(G) -> list:
    """[(name, module)] of the synthesis layers whose outputs can be inspected, in forward order.

    StyleGAN3: the Fourier-feature `input` layer, then G.synthesis.layer_names (L0_36_512, ...).
    StyleGAN2: the blocks b4, b8, ... (their feature output, not the skip RGB image).
    """
    syn = G.synthesis
    names = ['input'] if isinstance(getattr(syn, 'input', None), torch.nn.Module) else []
    layer_names = list(getattr(syn, 'layer_names', None) or [])
    if layer_names:
        names += layer_names
    else:
        names += [n for n, _ in syn.named_children() if re.fullmatch(r'b\d+', n)]
    return [(n, getattr(syn, n)) for n in names]


class _LayerCapture:
    """Keeps at most ONE forward hook, on the selected layer. The hook moves only when the
    selection changes, so frames without a selected layer run the bare network."""

    def __init__(self):
        self.module = None
        self.handle = None
        self.output = None

    def attach(self, module) -> None:
        if module is self.module:
            return
        if self.handle is not None:
            self.handle.remove()
        self.module, self.handle, self.output = module, None, None
        if module is not None:
            self.handle = module.register_forward_hook(self._store)

    def _store(self, _module, _inputs, output) -> None:
        self.output = output[0] if isinstance(output, (tuple, list)) else output

    def take(self):
        output, self.output = self.output, None
        return output


@dataclass
class _Net:
    G: torch.nn.Module
    layers: list          # [LayerInfo]
    modules: dict         # layer name -> module


class Renderer:
    """Renders frames for the visualizer. Loaded networks are cached per (network, device)."""

    def __init__(self, loader=None):
        self._loader = loader or _default_loader   # (network, device) -> generator; injectable for tests
        self._nets = {}
        self._capture = _LayerCapture()

    @property
    def hook_count(self) -> int:
        """Number of forward hooks this renderer has on the cached networks (0 or 1)."""
        return sum(len(m._forward_hooks) for net in self._nets.values() for _, m in net.G.named_modules())

    def render(self, args: RenderArgs) -> RenderResult:
        result = RenderResult(args=args)
        start = time.perf_counter()
        try:
            self._render(args, result)
        except Exception as error:      # every failure is shown in the window, never a crash
            result.error = _one_sentence(error)
            result.error_detail = traceback.format_exc()
        result.timings['total'] = 1000 * (time.perf_counter() - start)
        return result

    # ------------------------------------------------------------------------------------------

    def _render(self, args: RenderArgs, result: RenderResult) -> None:
        if not args.network:
            raise ValueError('No network is loaded: drop a network file on the window or pick one in the Network panel.')
        if args.noise_mode not in NOISE_MODES:
            raise ValueError(f'noise mode "{args.noise_mode}" is not one of {", ".join(NOISE_MODES)}.')
        device = resolve_device(args.device)
        net = self._network(args.network, device, result)
        G = net.G
        result.layers, result.num_ws, result.img_resolution, result.c_dim = net.layers, G.num_ws, G.img_resolution, G.c_dim
        with torch.no_grad():
            ws = _timed(result, 'mapping', lambda: self._ws(G, args, device))
            self._set_input_transform(G, args, result)
            self._select_layer(net, args, result)
            img = _timed(result, 'synthesis', lambda: self._synthesize(G, ws, args))    # [1, C, H, W]
            feature = self._capture.take()
            _timed(result, 'display', lambda: self._to_display(img, feature, args, result))

    def _network(self, network: str, device: torch.device, result: RenderResult) -> _Net:
        key = (network, str(device))
        if key not in self._nets:
            start = time.perf_counter()
            G = self._loader(network, device)
            self._nets[key] = _probe_layers(G, device)
            result.timings['load'] = 1000 * (time.perf_counter() - start)
        return self._nets[key]

    def _ws(self, G, args: RenderArgs, device: torch.device) -> torch.Tensor:
        """Blended, truncated and style-mixed w: [1, num_ws, w_dim]."""
        corners = render_ops.latent_corners(args.seed, args.latent_x, args.latent_y)
        seeds = [seed for seed, _ in corners] + [args.stylemix_seed]
        z = gen_utils.seeds_to_z([s % render_ops.SEED_MOD for s in seeds], G.z_dim, device)   # [5, z_dim]
        c = torch.zeros([len(seeds), G.c_dim], device=device)
        if G.c_dim > 0:
            c[:, (args.class_idx or 0) % G.c_dim] = 1
        ws = G.mapping(z, c, truncation_psi=args.trunc_psi, truncation_cutoff=args.trunc_cutoff)  # [5, num_ws, w_dim]
        # Truncation is affine in w, so blending truncated w equals truncating the blended w.
        w = render_ops.blend_ws(ws[:4], [weight for _, weight in corners])
        return render_ops.apply_style_mix(w, ws[4:], args.stylemix_layers)

    @staticmethod
    def _set_input_transform(G, args: RenderArgs, result: RenderResult) -> None:
        transform = getattr(getattr(G.synthesis, 'input', None), 'transform', None)
        result.has_input_transform = transform is not None
        if transform is None:
            if tuple(args.translate) != (0, 0) or args.rotate != 0 or args.untransform:
                result.notice = 'This network has no input transform; translate, rotate and untransform are ignored.'
            return
        m = render_ops.input_transform(args.translate, args.rotate)
        transform.copy_(torch.from_numpy(m).to(transform))

    def _select_layer(self, net: _Net, args: RenderArgs, result: RenderResult) -> None:
        module = net.modules.get(args.layer) if args.layer else None
        if args.layer and module is None:
            result.notice = f'Layer "{args.layer}" does not exist in this network.'
        self._capture.attach(module)

    @staticmethod
    def _synthesize(G, ws: torch.Tensor, args: RenderArgs) -> torch.Tensor:
        def run():
            return G.synthesis(ws, noise_mode=args.noise_mode, force_fp32=args.force_fp32)
        if args.noise_mode != 'random':
            return run()
        with torch.random.fork_rng(devices=[ws.device] if ws.device.type == 'cuda' else []):
            torch.manual_seed(args.noise_seed)
            return run()

    @staticmethod
    def _to_display(img, feature, args: RenderArgs, result: RenderResult) -> None:
        if args.untransform and result.has_input_transform:
            img = render_ops.untransform(img.float(), args.translate, args.rotate)
        result.image = render_ops.image_to_uint8(img[0])
        result.stats['output'] = render_ops.tensor_stats(img[0])
        target = img[0].float()
        if feature is not None:
            feature = feature[0].float()                                 # [C, h, w]
            result.layer_image = render_ops.feature_to_uint8(feature, args.channel, args.rgb, args.normalize, args.scale_db)
            result.stats[args.layer] = render_ops.tensor_stats(feature)
            target = feature
        if args.fft_show:
            if not args.fft_all:
                target = render_ops.select_channels(target, args.channel, args.rgb)
            result.spectrum = render_ops.spectrum_to_uint8(target, args.fft_beta, args.fft_range_db)


def _probe_layers(G, device: torch.device) -> _Net:
    """Run the network once with temporary hooks on every inspectable layer to learn the output
    shapes for the layer list. Happens once per loaded network; the hooks are removed again."""
    layers, shapes = feature_layers(G), {}
    handles = [m.register_forward_hook(_shape_recorder(shapes, name)) for name, m in layers]
    try:
        with torch.no_grad():
            ws = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1).to(device)  # [1, num_ws, w_dim]
            G.synthesis(ws, noise_mode='const')
    finally:
        for handle in handles:
            handle.remove()
    infos = [LayerInfo(name, *shapes[name]) for name, _ in layers if name in shapes]
    return _Net(G=G, layers=infos, modules=dict(layers))


def _shape_recorder(shapes: dict, name: str):
    def record(_module, _inputs, output):
        x = output[0] if isinstance(output, (tuple, list)) else output
        shapes[name] = (tuple(x.shape[1:]), str(x.dtype).replace('torch.', ''))
    return record


def _timed(result: RenderResult, name: str, fn):
    start = time.perf_counter()
    value = fn()
    result.timings[name] = 1000 * (time.perf_counter() - start)
    return value


def _one_sentence(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ''
    if isinstance(error, ValueError) and text:      # our own user-facing errors are already sentences
        return text
    return f'{type(error).__name__}: {text}' if text else type(error).__name__
