"""Style mixing: a second seed supplies the w entries of the selected synthesis inputs."""

from imgui_bundle import imgui


class StyleMixWidget:
    title = 'Style mix'

    def update(self, app, dt: float) -> None:
        pass

    def draw(self, app) -> None:
        args = app.args
        num_ws = app.result.num_ws if app.result is not None and app.result.num_ws else 0
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        changed, seed = imgui.input_int('Mix seed', args.stylemix_seed)
        if changed:
            app.args = args = args.replace(stylemix_seed=max(0, seed))
        if not num_ws:
            imgui.text_disabled('Load a network to choose layers.')
            return
        imgui.text(f'Take w[i] from the mix seed ({num_ws} entries):')
        layers = set(args.stylemix_layers)
        for i in range(num_ws):
            if i % 8:
                imgui.same_line()
            changed, on = imgui.checkbox(f'{i}##mix', i in layers)
            if changed:
                layers = layers | {i} if on else layers - {i}
                app.args = args = args.replace(stylemix_layers=tuple(sorted(layers)))
        if imgui.button('Coarse'):      # StyleGAN paper section 3.1: early layers = coarse styles
            app.args = args.replace(stylemix_layers=tuple(range(num_ws // 2)))
        imgui.same_line()
        if imgui.button('Fine'):
            app.args = args.replace(stylemix_layers=tuple(range(num_ws // 2, num_ws)))
        imgui.same_line()
        if imgui.button('None##mix'):
            app.args = args.replace(stylemix_layers=())
