"""Network: path field, recent networks, run directories with their snapshots, bundled models."""

import pathlib

from imgui_bundle import imgui

NETWORK_SUFFIXES = ('.pkl', '.pt', '.safetensors')


def list_snapshots(directory) -> list:
    """Network files in a directory and in its immediate subdirectories (training runs)."""
    root = pathlib.Path(directory)
    if not root.is_dir():
        return []
    files = [p for p in root.glob('*') if p.suffix in NETWORK_SUFFIXES and p.name != 'training-state.pt']
    files += [p for p in root.glob('*/*') if p.suffix in NETWORK_SUFFIXES and p.name != 'training-state.pt']
    return sorted(str(p) for p in files)


class NetworkWidget:
    title = 'Network'

    def __init__(self):
        self.path_text = ''
        self._browse_cache = {}

    def update(self, app, dt: float) -> None:
        pass

    def draw(self, app) -> None:
        imgui.text_wrapped(f'Current: {app.args.network or "(none)"}')
        imgui.set_next_item_width(imgui.get_font_size() * 18)
        entered, self.path_text = imgui.input_text('##path', self.path_text, imgui.InputTextFlags_.enter_returns_true)
        imgui.same_line()
        if (imgui.button('Load') or entered) and self.path_text.strip():
            app.load_network(self.path_text.strip())
        imgui.text_disabled('Or drop a network file on the window.')
        self._list('Recent', app.recent_networks, app)
        self._list('Bundled models', app.bundled_models, app)
        for directory in app.browse_dirs:
            if imgui.tree_node(f'Browse {directory}'):
                if imgui.button('Refresh') or directory not in self._browse_cache:
                    self._browse_cache[directory] = list_snapshots(directory)
                self._entries(self._browse_cache[directory], app)
                imgui.tree_pop()

    def _list(self, label: str, entries, app) -> None:
        if entries and imgui.tree_node(label):
            self._entries(entries, app)
            imgui.tree_pop()

    @staticmethod
    def _entries(entries, app) -> None:
        if not entries:
            imgui.text_disabled('(no network files)')
        for entry in entries:
            clicked, _ = imgui.selectable(str(entry), str(entry) == app.args.network)
            if clicked:
                app.load_network(str(entry))
