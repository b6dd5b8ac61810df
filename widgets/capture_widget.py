"""Capture: save the rendered image or the whole GUI as PNG into the capture directory."""

from imgui_bundle import imgui


class CaptureWidget:
    title = 'Capture'

    def update(self, app, dt: float) -> None:
        pass

    def draw(self, app) -> None:
        imgui.set_next_item_width(imgui.get_font_size() * 16)
        changed, path = imgui.input_text('Directory', str(app.settings.capture_dir))
        if changed:
            app.settings.capture_dir = path
        has_image = app.result is not None and app.result.image is not None
        imgui.begin_disabled(not has_image)
        if imgui.button('Save image'):
            app.request_capture('image')
        imgui.end_disabled()
        imgui.same_line()
        if imgui.button('Save GUI'):
            app.request_capture('gui')
        if app.last_capture:
            imgui.text_disabled(f'Saved {app.last_capture}')
