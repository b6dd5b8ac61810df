"""Truncation (psi, cutoff) and noise (mode, seed)."""

from imgui_bundle import imgui

from visualizer.render_args import NOISE_MODES


class TruncNoiseWidget:
    title = 'Truncation & noise'

    def update(self, app, dt: float) -> None:
        pass

    def draw(self, app) -> None:
        args = app.args
        num_ws = app.result.num_ws if app.result is not None and app.result.num_ws else 16
        imgui.set_next_item_width(imgui.get_font_size() * 12)
        changed, psi = imgui.slider_float('Truncation psi', args.trunc_psi, -1.0, 2.0, '%.2f')
        if changed:
            app.args = args = args.replace(trunc_psi=psi)
        cutoff = num_ws if args.trunc_cutoff is None else args.trunc_cutoff
        imgui.set_next_item_width(imgui.get_font_size() * 12)
        changed, cutoff = imgui.slider_int('Cutoff', cutoff, 0, num_ws, '%d w entries')
        if changed:
            app.args = args = args.replace(trunc_cutoff=None if cutoff >= num_ws else cutoff)
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        changed, mode = imgui.combo('Noise', NOISE_MODES.index(args.noise_mode), list(NOISE_MODES))
        if changed:
            app.args = args = args.replace(noise_mode=NOISE_MODES[mode])
        imgui.begin_disabled(args.noise_mode != 'random')
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        changed, seed = imgui.input_int('Noise seed', args.noise_seed)
        if changed:
            app.args = args = args.replace(noise_seed=max(0, seed))
        imgui.end_disabled()
        if imgui.button('Reset##trunc'):
            app.args = args.replace(trunc_psi=1.0, trunc_cutoff=None, noise_mode='const', noise_seed=0)
