"""ImGui widgets of the visualizer, one per file.

A widget edits the app's RenderArgs (frozen; replaced with `app.args = app.args.replace(...)`)
and app-level settings; it never imports torch or calls a network. Interface:

    widget.title                 header text
    widget.update(app, dt)       every frame, even when collapsed (animations)
    widget.draw(app)             inside its collapsing header
"""

from widgets.capture_widget import CaptureWidget
from widgets.equivariance_widget import EquivarianceWidget
from widgets.latent_widget import LatentWidget
from widgets.layer_widget import LayerWidget
from widgets.network_widget import NetworkWidget
from widgets.performance_widget import PerformanceWidget
from widgets.stylemix_widget import StyleMixWidget
from widgets.trunc_noise_widget import TruncNoiseWidget


def default_widgets() -> list:
    """All widgets in the order they appear in the control pane."""
    return [NetworkWidget(), LatentWidget(), StyleMixWidget(), TruncNoiseWidget(), EquivarianceWidget(),
            LayerWidget(), PerformanceWidget(), CaptureWidget()]
