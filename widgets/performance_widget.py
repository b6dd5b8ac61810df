"""Performance: GUI and render frame-time plots, FPS limit, vsync, worker process, fp32."""

import numpy as np
from imgui_bundle import imgui, implot


class PerformanceWidget:
    title = 'Performance'

    def update(self, app, dt: float) -> None:
        pass

    def draw(self, app) -> None:
        gui = np.asarray(app.gui_frame_times, dtype=np.float32) * 1000      # ms
        render = np.asarray(app.render_frame_times, dtype=np.float32)      # ms
        gui_fps = 1000 / gui.mean() if gui.size else 0.0
        render_fps = 1000 / render.mean() if render.size else 0.0
        imgui.text(f'GUI {gui_fps:5.1f} FPS   render {render_fps:5.1f} FPS   latency {app.latency_ms:6.1f} ms')
        self._plot(gui, render)
        settings = app.settings
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        _, settings.fps_limit = imgui.slider_int('FPS limit', settings.fps_limit, 5, 240)
        imgui.same_line()
        _, settings.vsync = imgui.checkbox('Vsync', settings.vsync)
        changed, separate = imgui.checkbox('Render in a separate process', not app.renderer.in_process)
        if changed:
            app.renderer.set_in_process(not separate)
        changed, fp32 = imgui.checkbox('Force fp32', app.args.force_fp32)
        if changed:
            app.args = app.args.replace(force_fp32=fp32)

    @staticmethod
    def _plot(gui: np.ndarray, render: np.ndarray) -> None:
        size = imgui.ImVec2(-1, imgui.get_font_size() * 9)
        if not implot.begin_plot('Frame times', size, implot.Flags_.no_mouse_text):
            return
        implot.setup_axes('frame', 'ms', implot.AxisFlags_.auto_fit, implot.AxisFlags_.auto_fit)
        if gui.size:
            implot.plot_line('GUI', gui)
        if render.size:
            implot.plot_line('render', render)
        implot.end_plot()
