"""The visualizer window: GLFW + Dear ImGui (imgui-bundle's pure-Python backend) + PyOpenGL.

Left: the widgets (widgets/), editing one RenderArgs. Right: the rendered image at integer zoom,
the power spectrum next to it, and error / "loading..." overlays. Rendering happens in a worker
process (visualizer/async_renderer.py) unless `in_process` is set.

Call gl_utils.select_platform() before constructing the app (it must run before OpenGL is
imported).
"""

import collections
import dataclasses
import pathlib
import time

import glfw
import OpenGL.GL as gl
from imgui_bundle import imgui, implot
from imgui_bundle.python_backends.glfw_backend import GlfwRenderer

from visualizer import gl_utils
from visualizer.async_renderer import AsyncRenderer
from visualizer.render_args import RenderArgs, RenderResult
from widgets import default_widgets
from widgets.latent_widget import drag_latent

OPEN_BY_DEFAULT = {'Network', 'Latent', 'Truncation & noise', 'Equivariance', 'Layers'}
BASE_SIZE = (1280, 800)        # window size at which the font scale is 1
ERROR_COLOR = imgui.ImVec4(1.0, 0.35, 0.3, 1.0)
NOTICE_COLOR = imgui.ImVec4(1.0, 0.8, 0.3, 1.0)


@dataclasses.dataclass
class AppSettings:
    fps_limit: int = 60
    vsync: bool = False
    capture_dir: str = 'captures'


# GUI frame-rate cap when the networks render on the CPU: without a GPU the GUI's drawing and the
# render worker share the cores, and at 60 GUI frames/s the drawing took ~0.7 of a core on a
# 2-core machine (software OpenGL), leaving the bundled StyleGAN3-T at 20-25 rendered frames/s
# instead of ~29 at 30 (benchmarks/visualizer.py). The image cannot change faster than the
# renderer delivers it anyway.
CPU_FPS_LIMIT = 30


def default_fps_limit(device: str) -> int:
    """60 when the renderer runs on a GPU, else CPU_FPS_LIMIT. For device 'auto' the GUI process
    does not import torch (it stays light) and looks for the NVIDIA driver instead."""
    on_gpu = device.startswith('cuda') or (device == 'auto' and pathlib.Path('/proc/driver/nvidia/version').exists())
    return AppSettings.fps_limit if on_gpu else CPU_FPS_LIMIT


class VisualizerApp:
    def __init__(self, args: RenderArgs, *, recent=(), browse_dirs=(), bundled_models=(), capture_dir='captures',
                 in_process=False, offscreen=False, window_size=BASE_SIZE, loader=None, notice=None,
                 render_threads=None, visible=True, open_panels=OPEN_BY_DEFAULT, fps_limit=None):
        self.args = args
        self.result: RenderResult | None = None
        self.settings = AppSettings(capture_dir=str(capture_dir),
                                    fps_limit=default_fps_limit(str(args.device)) if fps_limit is None else fps_limit)
        self.recent_networks = list(dict.fromkeys([n for n in [args.network, *recent] if n]))
        self.browse_dirs, self.bundled_models = list(browse_dirs), list(bundled_models)
        self.notice = notice
        self.open_panels = set(open_panels)     # widget titles whose panel starts expanded
        self.renderer = AsyncRenderer(in_process=in_process, loader=loader, num_threads=render_threads)
        self.gui_frame_times = collections.deque(maxlen=120)     # seconds
        self.render_frame_times = collections.deque(maxlen=120)  # milliseconds
        self.latency_ms = 0.0
        self.layout = {}                 # rectangles of what was drawn last frame, in framebuffer pixels
        self.overlay_text = None
        self.last_capture = None
        self.frame_count = 0
        self._sent_at = collections.OrderedDict()    # RenderArgs -> time sent (for latency)
        self._capture_requests = []
        self._last_screenshot = None
        self._last_frame = time.perf_counter()
        self._vsync = None
        self._init_window(window_size, offscreen, visible)
        self.widgets = default_widgets()

    # ------------------------------------------------------------------------------------------
    # Public API (used by widgets, the CLI and the tests).

    def load_network(self, network: str) -> None:
        self.args = self.args.replace(network=network, layer=None)
        self.recent_networks = list(dict.fromkeys([network, *self.recent_networks]))[:10]

    def request_capture(self, kind: str) -> None:
        """kind: 'image' (the rendered image) or 'gui' (the whole window), saved at the end of the frame."""
        self._capture_requests.append(kind)

    def step(self) -> bool:
        """Run one GUI frame. Returns False once the window wants to close."""
        start = time.perf_counter()
        glfw.poll_events()
        if glfw.window_should_close(self.window):
            return False
        self._impl.process_inputs()
        dt, self._last_frame = start - self._last_frame, start
        for widget in self.widgets:
            widget.update(self, dt)
        # Send animated arguments before drawing, so the worker renders while the GUI draws and
        # its result is back by the next frame. Sent after drawing, a 22 ms render of the bundled
        # model missed every other 33 ms frame: 16-20 instead of 30 new images/s
        # (benchmarks/visualizer.py, render_fps of the gui+worker line).
        self._send_args()
        self._receive_result()
        self._draw_gui()
        self._send_args()  # what the user changed in the widgets just drawn (no-op otherwise)
        self._present()
        self.frame_count += 1
        self._limit_fps(start)
        self.gui_frame_times.append(time.perf_counter() - start)
        return True

    def wait_for_result(self, timeout: float = 120.0, frames_after: int = 2) -> RenderResult:
        """Step until the displayed result answers the current args (then a few more frames so
        the new image is on screen)."""
        deadline = time.time() + timeout
        while self.result is None or self.result.args != self.args:
            if time.time() > deadline:
                raise TimeoutError(f'no render result for the current arguments within {timeout} s')
            if not self.step():
                raise RuntimeError('the window was closed while waiting for a render result')
        for _ in range(frames_after):
            self.step()
        return self.result

    def screenshot(self):
        """uint8 [H, W, 3] of the whole GUI as drawn by the next frame."""
        self._capture_requests.append('array')
        self.step()
        return self._last_screenshot

    def close(self) -> None:
        self.renderer.close()
        self._impl.shutdown()
        implot.destroy_context()
        imgui.destroy_context()
        glfw.destroy_window(self.window)
        glfw.terminate()

    # ------------------------------------------------------------------------------------------
    # Window and frame.

    def _init_window(self, window_size, offscreen: bool, visible: bool) -> None:
        self.window = gl_utils.create_window(*window_size, 'StyleGAN visualizer', offscreen, visible)
        imgui.create_context()
        implot.create_context()
        io = imgui.get_io()
        io.set_ini_filename('')                     # no imgui.ini files in the user's directory
        io.fonts.add_font_default_vector()          # scalable: stays crisp when the window grows
        self._impl = GlfwRenderer(self.window)
        glfw.set_drop_callback(self.window, self._on_drop)
        self._textures = {'view': gl_utils.Texture(), 'spectrum': gl_utils.Texture()}

    def _on_drop(self, _window, paths) -> None:
        """A file dropped on the window is opened (the first one, if several)."""
        if paths:
            self.load_network(str(paths[0]))

    def _present(self) -> None:
        if self._vsync != self.settings.vsync:
            self._vsync = self.settings.vsync
            glfw.swap_interval(1 if self._vsync else 0)
        fb_w, fb_h = glfw.get_framebuffer_size(self.window)
        gl.glViewport(0, 0, fb_w, fb_h)
        gl.glClearColor(0.1, 0.1, 0.12, 1.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        imgui.render()
        self._impl.render(imgui.get_draw_data())
        if self._capture_requests:
            self._save_captures(fb_w, fb_h)
        glfw.swap_buffers(self.window)

    def _limit_fps(self, start: float) -> None:
        if self.settings.vsync or self.settings.fps_limit <= 0:
            return
        remaining = 1.0 / self.settings.fps_limit - (time.perf_counter() - start)
        if remaining > 0:
            time.sleep(remaining)

    def _receive_result(self) -> None:
        result = self.renderer.poll()
        if result is None:
            return
        self.result = result
        sent = self._sent_at.pop(result.args, None)
        if sent is not None:
            self.latency_ms = 1000 * (time.perf_counter() - sent)
        if 'total' in result.timings and result.error is None:
            self.render_frame_times.append(result.timings['total'])
        if result.error_detail:
            print(result.error_detail, flush=True)
        for name, image in (('view', result.layer_image if result.layer_image is not None else result.image),
                            ('spectrum', result.spectrum)):
            if image is not None:
                self._textures[name].update(image)

    def _send_args(self) -> None:
        self.renderer.set_args(self.args)
        if self.args not in self._sent_at:
            self._sent_at[self.args] = time.perf_counter()
            while len(self._sent_at) > 64:
                self._sent_at.popitem(last=False)

    # ------------------------------------------------------------------------------------------
    # Drawing.

    def _draw_gui(self) -> None:
        imgui.new_frame()
        width, height = imgui.get_io().display_size
        scale = min(max(min(width / BASE_SIZE[0], height / BASE_SIZE[1]), 0.75), 3.0)
        imgui.get_style().font_scale_main = scale
        pane = min(max(width * 0.36, 340 * scale), width * 0.6)
        self._draw_controls(pane, height)
        self._draw_view(pane, width - pane, height)
        io = imgui.get_io()
        if imgui.is_key_pressed(imgui.Key.escape) and not io.want_text_input:
            glfw.set_window_should_close(self.window, True)

    def _draw_controls(self, width: float, height: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(0, 0))
        imgui.set_next_window_size(imgui.ImVec2(width, height))
        flags = imgui.WindowFlags_.no_title_bar | imgui.WindowFlags_.no_resize | imgui.WindowFlags_.no_move | \
            imgui.WindowFlags_.no_collapse | imgui.WindowFlags_.no_saved_settings
        imgui.begin('Controls', None, flags)
        if self.notice:
            imgui.push_text_wrap_pos(0)
            imgui.text_colored(NOTICE_COLOR, self.notice)
            imgui.pop_text_wrap_pos()
        for widget in self.widgets:
            open_flag = imgui.TreeNodeFlags_.default_open if widget.title in self.open_panels else 0
            if imgui.collapsing_header(widget.title, open_flag):
                imgui.push_id(widget.title)
                widget.draw(self)
                imgui.pop_id()
        imgui.end()

    def _draw_view(self, x0: float, width: float, height: float) -> None:
        imgui.set_next_window_pos(imgui.ImVec2(x0, 0))
        imgui.set_next_window_size(imgui.ImVec2(width, height))
        flags = imgui.WindowFlags_.no_decoration | imgui.WindowFlags_.no_move | imgui.WindowFlags_.no_saved_settings | \
            imgui.WindowFlags_.no_bring_to_front_on_focus | imgui.WindowFlags_.no_scroll_with_mouse
        imgui.push_style_var(imgui.StyleVar_.window_padding, imgui.ImVec2(0, 0))
        imgui.begin('View', None, flags)
        self.layout = {}
        view = self._view_image()
        if view is not None:
            self._draw_images(view, x0, width, height)
        self._draw_overlay(x0, width)
        imgui.end()
        imgui.pop_style_var()

    def _view_image(self):
        result = self.result
        if result is None:
            return None
        return result.layer_image if result.layer_image is not None else result.image

    def _draw_images(self, view, x0: float, width: float, height: float) -> None:
        spectrum = self.result.spectrum
        h, w = view.shape[:2]
        total_w = w + (spectrum.shape[1] + 4 if spectrum is not None else 0)
        margin = 8
        zoom = max(1, int(min((width - 2 * margin) / total_w, (height - 2 * margin) / max(h, 1))))
        left = int((width - total_w * zoom) / 2)
        top = int((height - h * zoom) / 2)
        self._image(view, 'view', left, top, zoom, x0)
        if spectrum is not None:
            self._image(spectrum, 'spectrum', left + (w + 4) * zoom, top, zoom, x0)
        self.layout['zoom'] = zoom
        self._handle_drag(left, top, w * zoom, h * zoom)

    def _image(self, image, name: str, left: int, top: int, zoom: int, x0: float) -> None:
        h, w = image.shape[:2]
        imgui.set_cursor_pos(imgui.ImVec2(left, top))
        imgui.image(imgui.ImTextureRef(self._textures[name].id), imgui.ImVec2(w * zoom, h * zoom))
        sx, sy = imgui.get_io().display_framebuffer_scale
        self.layout[f'{name}_rect'] = [round((x0 + left) * sx), round(top * sy), round(w * zoom * sx), round(h * zoom * sy)]

    def _handle_drag(self, left: int, top: int, w: int, h: int) -> None:
        """Dragging the image moves the latent: one image width of drag = one seed."""
        imgui.set_cursor_pos(imgui.ImVec2(left, top))
        imgui.invisible_button('##drag', imgui.ImVec2(max(w, 1), max(h, 1)))
        if imgui.is_item_active():
            delta = imgui.get_io().mouse_delta
            if delta.x or delta.y:
                self.args = drag_latent(self.args, -delta.x / w, -delta.y / h)

    def _draw_overlay(self, x0: float, width: float) -> None:
        text, color = self._overlay_message()
        self.overlay_text = text
        if not text:
            return
        pad = imgui.get_font_size()
        imgui.set_cursor_pos(imgui.ImVec2(pad, pad))
        imgui.push_text_wrap_pos(width - pad)
        imgui.text_colored(color, text)
        imgui.pop_text_wrap_pos()

    def _overlay_message(self):
        result, args = self.result, self.args
        if not args.network:
            return 'No network: drop a network file on the window or pick one in the Network panel.', NOTICE_COLOR
        if result is None or result.args is None or result.args.network != args.network:
            return f'Loading {args.network} ...', NOTICE_COLOR
        if result.error:
            return f'Error: {result.error}', ERROR_COLOR
        if result.notice:
            return result.notice, NOTICE_COLOR
        return None, None

    # ------------------------------------------------------------------------------------------
    # Captures.

    def _save_captures(self, fb_w: int, fb_h: int) -> None:
        requests, self._capture_requests = self._capture_requests, []
        screen = gl_utils.read_framebuffer(fb_w, fb_h) if {'gui', 'array'} & set(requests) else None
        for kind in requests:
            if kind == 'array':
                self._last_screenshot = screen
            elif kind == 'gui':
                self.last_capture = self._save(screen, 'gui')
            elif kind == 'image' and self.result is not None and self.result.image is not None:
                self.last_capture = self._save(self.result.image, 'image')

    def _save(self, image, kind: str) -> str:
        stamp = time.strftime('%Y%m%d-%H%M%S')
        path = pathlib.Path(self.settings.capture_dir) / f'{stamp}-{self.frame_count:06d}-{kind}.png'
        gl_utils.save_png(path, image)
        return str(path)
