"""Equivariance: translate / rotate the StyleGAN3 input, animate them, untransform the output."""

import math

from imgui_bundle import imgui


class EquivarianceWidget:
    title = 'Equivariance'

    def __init__(self):
        self.animate_translate = False
        self.translate_speed = 0.1    # turns of the circle per second
        self.translate_radius = 0.125  # image widths
        self.round_to_pixels = False
        self.animate_rotate = False
        self.rotate_speed = 0.05      # turns per second
        self._phase = 0.0

    def update(self, app, dt: float) -> None:
        args = app.args
        if self.animate_translate:
            self._phase += self.translate_speed * dt
            angle = 2 * math.pi * self._phase
            xy = (self.translate_radius * math.cos(angle), self.translate_radius * math.sin(angle))
            app.args = args = args.replace(translate=self._maybe_round(app, xy))
        if self.animate_rotate:
            app.args = args.replace(rotate=(args.rotate + self.rotate_speed * dt) % 1.0)

    def draw(self, app) -> None:
        args = app.args
        if app.result is not None and app.result.image is not None and not app.result.has_input_transform:
            imgui.text_colored(imgui.ImVec4(1, 0.7, 0.3, 1), 'This network has no input transform.')
        fast = imgui.get_io().key_shift
        imgui.set_next_item_width(imgui.get_font_size() * 12)
        changed, xy = imgui.drag_float2('Translate', list(args.translate), 1e-2 if fast else 1e-3, format='%.4f')
        if changed:
            app.args = args = args.replace(translate=self._maybe_round(app, xy))
        imgui.same_line()
        imgui.text_disabled('(image widths; Shift = fast)')
        _, self.round_to_pixels = imgui.checkbox('Round to integer pixels', self.round_to_pixels)
        _, self.animate_translate = imgui.checkbox('Animate on a circle', self.animate_translate)
        imgui.same_line()
        imgui.set_next_item_width(imgui.get_font_size() * 6)
        _, self.translate_speed = imgui.slider_float('Speed##xlate', self.translate_speed, 0, 1, '%.2f')
        imgui.same_line()
        imgui.set_next_item_width(imgui.get_font_size() * 6)
        _, self.translate_radius = imgui.slider_float('Radius', self.translate_radius, 0, 0.5, '%.3f')
        imgui.set_next_item_width(imgui.get_font_size() * 12)
        changed, rotate = imgui.drag_float('Rotate', args.rotate, 1e-2 if fast else 1e-3, format='%.4f turns')
        if changed:
            app.args = args = args.replace(rotate=rotate)
        _, self.animate_rotate = imgui.checkbox('Animate rotation', self.animate_rotate)
        imgui.same_line()
        imgui.set_next_item_width(imgui.get_font_size() * 6)
        _, self.rotate_speed = imgui.slider_float('Speed##rot', self.rotate_speed, -0.5, 0.5, '%.2f')
        changed, untransform = imgui.checkbox('Untransform (resample the output back)', args.untransform)
        if changed:
            app.args = args = args.replace(untransform=untransform)
        if imgui.button('Reset##eq'):
            self.animate_translate = self.animate_rotate = False
            app.args = args.replace(translate=(0.0, 0.0), rotate=0.0, untransform=False)

    def _maybe_round(self, app, xy):
        res = app.result.img_resolution if app.result is not None and app.result.img_resolution else 0
        if self.round_to_pixels and res:
            return (round(xy[0] * res) / res, round(xy[1] * res) / res)
        return (float(xy[0]), float(xy[1]))
