"""Runs the Renderer next to the GUI: in a worker process (default) or in the GUI process.

The GUI sends RenderArgs whenever they change and polls for results every frame. The worker
skips requests that were superseded while it was busy (the latest args win), so the image
lags the controls by at most one render in progress plus the render of the newest args.
This module does not import torch; the worker process and the in-process mode import it lazily.
"""

import multiprocessing
import os
import queue

from visualizer.render_args import RenderArgs, RenderResult

_STOP = 'stop'


def default_render_threads() -> int:
    """Leave one core to the GUI so its frame rate does not collapse while the worker renders."""
    return max(1, (os.cpu_count() or 1) - 1)


def _worker_main(requests, results, loader, num_threads: int) -> None:
    import torch
    from visualizer.renderer import Renderer
    torch.set_num_threads(num_threads)
    renderer = Renderer(loader=loader)
    while True:
        args = requests.get()
        try:                        # drain: everything queued behind `args` supersedes it
            while True:
                args = requests.get_nowait()
        except queue.Empty:
            pass
        if args == _STOP:
            return
        results.put(renderer.render(args))


class AsyncRenderer:
    """set_args() whenever the controls change; poll() once per GUI frame."""

    def __init__(self, in_process: bool = False, loader=None, num_threads: int | None = None):
        self._loader = loader                # must be picklable (a module-level function) for the worker
        self._num_threads = num_threads or default_render_threads()
        self._in_process = in_process
        self._local = None                   # Renderer used in-process
        self._process = None
        self._requests = self._results = None
        self._sent = None                    # last args sent
        self._awaiting = False               # no result for self._sent yet

    @property
    def in_process(self) -> bool:
        return self._in_process

    @property
    def num_threads(self) -> int:
        return self._num_threads

    @property
    def busy(self) -> bool:
        return self._awaiting

    def set_in_process(self, in_process: bool) -> None:
        if in_process != self._in_process:
            self.close()
            self._in_process, self._sent = in_process, None

    def set_args(self, args: RenderArgs) -> None:
        if args == self._sent:
            return
        self._sent, self._awaiting = args, True
        if not self._in_process:
            self._ensure_worker()
            self._requests.put(args)

    def poll(self) -> RenderResult | None:
        """The newest finished result, or None. In-process mode renders here, synchronously."""
        if self._in_process:
            return self._render_locally()
        newest = None
        while self._results is not None:
            try:
                newest = self._results.get_nowait()
            except queue.Empty:
                break
        if newest is None and self._awaiting and not self._process.is_alive():
            newest = self._worker_died()
        if newest is not None and newest.args == self._sent:
            self._awaiting = False
        return newest

    def close(self) -> None:
        if self._process is not None:
            try:
                self._requests.put(_STOP)
                self._process.join(timeout=2)
            finally:
                if self._process.is_alive():
                    self._process.kill()
                self._process = self._requests = self._results = None
        self._awaiting = False

    # ------------------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        ctx = multiprocessing.get_context('spawn')    # fork would copy the GL context and GUI threads
        self._requests, self._results = ctx.Queue(), ctx.Queue()
        self._process = ctx.Process(target=_worker_main, name='visualizer-render-worker', daemon=True,
                                    args=(self._requests, self._results, self._loader, self._num_threads))
        self._process.start()

    def _render_locally(self) -> RenderResult | None:
        if not self._awaiting:
            return None
        if self._local is None:
            from visualizer.renderer import Renderer
            self._local = Renderer(loader=self._loader)
        self._awaiting = False
        return self._local.render(self._sent)

    def _worker_died(self) -> RenderResult:
        code = self._process.exitcode
        self._process = None
        self._awaiting = False
        args, self._sent = self._sent, None          # resend on the next set_args
        return RenderResult(args=args, error=f'The render worker stopped unexpectedly (exit code {code}); '
                                             'change any control to restart it.')
