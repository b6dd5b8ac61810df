"""Layers: pick a synthesis layer, browse its channels, normalise / dB, stats, power spectrum."""

from imgui_bundle import imgui


class LayerWidget:
    title = 'Layers'

    def update(self, app, dt: float) -> None:
        pass

    def draw(self, app) -> None:
        result = app.result
        if result is None or not result.layers:
            imgui.text_disabled('Load a network to list its layers.')
            return
        self._layer_table(app, result)
        self._channel_controls(app, result)
        self._stats_table(result)
        self._fft_controls(app)

    @staticmethod
    def _layer_table(app, result) -> None:
        args = app.args
        flags = imgui.TableFlags_.borders_inner_v | imgui.TableFlags_.row_bg | imgui.TableFlags_.scroll_y
        height = imgui.get_text_line_height_with_spacing() * min(len(result.layers) + 2, 10)
        if not imgui.begin_table('layers', 4, flags, imgui.ImVec2(0, height)):
            return
        for name in ('Layer', 'Size', 'Channels', 'Dtype'):
            imgui.table_setup_column(name)
        imgui.table_headers_row()
        rows = [('output (image)', None, (result.image.shape[2] if result.image is not None else 3,
                                          result.img_resolution, result.img_resolution), 'uint8')]
        rows += [(l.name, l.name, l.shape, l.dtype) for l in result.layers]
        for label, name, shape, dtype in rows:
            imgui.table_next_row()
            imgui.table_set_column_index(0)
            clicked, _ = imgui.selectable(label, args.layer == name, imgui.SelectableFlags_.span_all_columns)
            if clicked:
                app.args = args = args.replace(layer=name, channel=0)
            for col, text in enumerate((f'{shape[2]}x{shape[1]}', str(shape[0]), dtype), start=1):
                imgui.table_set_column_index(col)
                imgui.text(text)
        imgui.end_table()

    @staticmethod
    def _channel_controls(app, result) -> None:
        args = app.args
        info = next((l for l in result.layers if l.name == args.layer), None)
        imgui.begin_disabled(info is None)
        channels = info.shape[0] if info is not None else 1
        imgui.set_next_item_width(imgui.get_font_size() * 12)
        changed, channel = imgui.slider_int('Channel', args.channel, 0, max(0, channels - 1))
        if changed:
            app.args = args = args.replace(channel=channel)
        changed, rgb = imgui.checkbox('RGB (3 consecutive channels)', args.rgb)
        if changed:
            app.args = args = args.replace(rgb=rgb)
        changed, normalize = imgui.checkbox('Normalise', args.normalize)
        if changed:
            app.args = args = args.replace(normalize=normalize)
        imgui.same_line()
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        changed, db = imgui.slider_float('Scale', args.scale_db, -40, 40, '%+.1f dB')
        if changed:
            app.args = args.replace(scale_db=db)
        imgui.end_disabled()

    @staticmethod
    def _stats_table(result) -> None:
        if not result.stats or not imgui.begin_table('stats', 4, imgui.TableFlags_.borders_inner_v):
            return
        for name in ('Statistic', 'Mean', 'Std', 'Max |x|'):
            imgui.table_setup_column(name)
        imgui.table_headers_row()
        for name, stats in result.stats.items():
            imgui.table_next_row()
            for col, text in enumerate((name, f'{stats["mean"]:.4g}', f'{stats["std"]:.4g}', f'{stats["max"]:.4g}')):
                imgui.table_set_column_index(col)
                imgui.text(text)
        imgui.end_table()

    @staticmethod
    def _fft_controls(app) -> None:
        args = app.args
        changed, show = imgui.checkbox('Power spectrum (FFT)', args.fft_show)
        if changed:
            app.args = args = args.replace(fft_show=show)
        imgui.begin_disabled(not args.fft_show)
        imgui.same_line()
        changed, fft_all = imgui.checkbox('All channels', args.fft_all)
        if changed:
            app.args = args = args.replace(fft_all=fft_all)
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        changed, rng = imgui.slider_float('Range', args.fft_range_db, 10, 120, '%.0f dB')
        if changed:
            app.args = args = args.replace(fft_range_db=rng)
        imgui.same_line()
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        changed, beta = imgui.slider_float('Kaiser beta', args.fft_beta, 0, 16, '%.1f')
        if changed:
            app.args = args.replace(fft_beta=beta)
        imgui.end_disabled()
