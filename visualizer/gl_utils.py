"""GLFW window creation and OpenGL texture / read-back helpers for the visualizer.

`select_platform()` must run before OpenGL is imported anywhere: PyOpenGL picks its platform
(GLX or OSMesa) at import time from PYOPENGL_PLATFORM.
"""

import ctypes.util
import os

OSMESA_HINT = ('Offscreen rendering needs the OSMesa software OpenGL library, which is not installed '
               '(Debian/Ubuntu: apt install libosmesa6).')
OFFSCREEN_HINT = ('No display is available: run it under `xvfb-run -a python -m visualizer ...` '
                  'or use the offscreen mode `--offscreen --frames N --screenshot FILE`.')


class NoDisplayError(RuntimeError):
    pass


def display_available() -> bool:
    return bool(os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY'))


def select_platform(offscreen: bool) -> None:
    """Offscreen = GLFW's null platform with an OSMesa (software) context: no X server needed."""
    import glfw
    if offscreen:
        if not ctypes.util.find_library('OSMesa'):    # else PyOpenGL fails deep in its import
            raise NoDisplayError(OSMESA_HINT)
        os.environ['PYOPENGL_PLATFORM'] = 'osmesa'
        glfw.init_hint(glfw.PLATFORM, glfw.PLATFORM_NULL)
    elif not display_available():
        raise NoDisplayError(OFFSCREEN_HINT)
    elif os.environ.get('XDG_SESSION_TYPE') == 'wayland' and not os.environ.get('PYOPENGL_PLATFORM'):
        os.environ['PYOPENGL_PLATFORM'] = 'x11'     # GLFW uses XWayland; PyOpenGL must agree


def create_window(width: int, height: int, title: str, offscreen: bool, visible: bool = True):
    import glfw
    if not glfw.init():
        raise NoDisplayError(OFFSCREEN_HINT)
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    if offscreen:
        glfw.window_hint(glfw.CONTEXT_CREATION_API, glfw.OSMESA_CONTEXT_API)   # OSMesa: no forward-compat
    else:
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)                      # required on macOS
    glfw.window_hint(glfw.VISIBLE, visible and not offscreen)
    window = glfw.create_window(width, height, title, None, None)
    if not window:
        glfw.terminate()
        raise NoDisplayError('Could not create an OpenGL 3.3 window. ' + OFFSCREEN_HINT)
    glfw.make_context_current(window)
    return window


class Texture:
    """An RGB uint8 texture that is re-uploaded only when the image changes (nearest filtering so
    integer zoom shows crisp pixels)."""

    def __init__(self):
        import OpenGL.GL as gl
        self._gl = gl
        self.id = int(gl.glGenTextures(1))
        self.shape = None
        self._source = None

    def update(self, image) -> None:
        """image: uint8 [H, W, 3] numpy array; the same object twice is uploaded once."""
        if image is self._source:
            return
        gl = self._gl
        self._source = image
        h, w = image.shape[:2]
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.id)
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_NEAREST)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_NEAREST)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_S, gl.GL_CLAMP_TO_EDGE)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_T, gl.GL_CLAMP_TO_EDGE)
        if self.shape == (h, w):
            gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, w, h, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, image)
        else:
            gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB8, w, h, 0, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, image)
            self.shape = (h, w)
        gl.glBindTexture(gl.GL_TEXTURE_2D, 0)

    def delete(self) -> None:
        self._gl.glDeleteTextures([self.id])


def read_framebuffer(width: int, height: int):
    """The current (back) buffer as uint8 [H, W, 3], top row first."""
    import numpy as np
    import OpenGL.GL as gl
    gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
    data = gl.glReadPixels(0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
    return np.frombuffer(data, np.uint8).reshape(height, width, 3)[::-1].copy()


def save_png(path, image) -> None:
    """Write a PNG atomically (temp name, then rename) so a crash never leaves half a file."""
    import pathlib
    import imageio.v3 as iio
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    iio.imwrite(tmp, image, extension='.png')
    os.replace(tmp, path)
