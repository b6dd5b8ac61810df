"""Latent: seed, fractional x/y offset on the seed plane, drag, animate, snap, reset."""

import math

from imgui_bundle import imgui


class LatentWidget:
    title = 'Latent'

    def __init__(self):
        self.animate = False
        self.speed = 0.25          # latent units (= seeds) per second along x

    def update(self, app, dt: float) -> None:
        if self.animate:
            app.args = app.args.replace(latent_x=app.args.latent_x + self.speed * dt)

    def draw(self, app) -> None:
        args = app.args
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        changed, seed = imgui.input_int('Seed', args.seed)
        if changed:
            app.args = args = args.replace(seed=max(0, seed))
        imgui.set_next_item_width(imgui.get_font_size() * 12)
        changed, xy = imgui.drag_float2('Offset x/y', [args.latent_x, args.latent_y], 0.01, format='%.3f')
        if changed:
            app.args = args = args.replace(latent_x=xy[0], latent_y=xy[1])
        c_dim = app.result.c_dim if app.result is not None else 0
        if c_dim:
            imgui.set_next_item_width(imgui.get_font_size() * 8)
            changed, cls = imgui.input_int(f'Class (0-{c_dim - 1})', args.class_idx or 0)
            if changed:
                app.args = args = args.replace(class_idx=min(max(cls, 0), c_dim - 1))
        imgui.text_disabled('Drag the image with the left mouse button to move the latent.')
        _, self.animate = imgui.checkbox('Animate', self.animate)
        imgui.same_line()
        imgui.set_next_item_width(imgui.get_font_size() * 8)
        _, self.speed = imgui.slider_float('Speed##latent', self.speed, -2.0, 2.0, '%.2f seeds/s')
        if imgui.button('Snap to integer'):
            app.args = snap_latent(args)
        imgui.same_line()
        if imgui.button('Reset##latent'):
            self.animate = False
            app.args = args.replace(seed=0, latent_x=0.0, latent_y=0.0)


def snap_latent(args):
    """Round the position to the nearest integer point so the frame shows exactly one seed."""
    seed = (args.seed + round(args.latent_x)) % (1 << 32)
    return args.replace(seed=seed, latent_x=0.0, latent_y=float(round(args.latent_y)))


def drag_latent(args, dx_images: float, dy_images: float):
    """Mouse drag on the image: one image width of drag moves one seed further."""
    if not (math.isfinite(dx_images) and math.isfinite(dy_images)):
        return args
    return args.replace(latent_x=args.latent_x + dx_images, latent_y=args.latent_y + dy_images)
