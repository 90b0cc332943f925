"""Progress of a long run (data passes, path points) for whoever watches it.

The solvers and engines report through two module functions, which cost a
global lookup when nobody observes; the command line installs a
:class:`TerminalProgress` on a terminal only (never in a scheduler's log).
Path points are reported from the driver's solver threads, hence the lock.
"""
from __future__ import annotations

import contextlib
import threading
import time

_lock = threading.Lock()
_observer = None


@contextlib.contextmanager
def observing(observer):
    """Send the progress reports of the enclosed block to ``observer``."""
    global _observer
    previous, _observer = _observer, observer
    try:
        yield observer
    finally:
        _observer = previous
        observer.close()


def data_pass(number, seconds):
    """An engine finished its pass ``number`` (counted from 1) in ``seconds``."""
    if _observer is not None:
        with _lock:
            _observer.data_pass(number, seconds)


def expect_points(total):
    """A search of ``total`` path points (all folds and l1_ratios) begins."""
    if _observer is not None:
        with _lock:
            _observer.expect_points(total)


def path_point():
    """One more path point is solved."""
    if _observer is not None:
        with _lock:
            _observer.path_point()


def clear_line():
    """Blank the status line (a log record is about to be written below it)."""
    if _observer is not None:
        with _lock:
            _observer.close()


class TerminalProgress:
    """One self-rewriting status line (``\\r``) on ``stream``, at most ``rate`` per second."""

    def __init__(self, stream, rate=10.0):
        self.stream = stream
        self.interval = 1.0 / rate
        self.passes, self.last_pass = 0, 0.0
        self.points, self.total = 0, 0
        self._shown, self._width = 0.0, 0

    def data_pass(self, number, seconds):
        self.passes, self.last_pass = number, seconds
        self._show()

    def expect_points(self, total):
        self.points, self.total = 0, total
        self._show(force=True)

    def path_point(self):
        self.points += 1
        self._show(force=self.points == self.total)

    def line(self):
        text = "data passes: %d (last %.2f s)" % (self.passes, self.last_pass)
        if self.total:
            text += " | path points: %d/%d" % (self.points, self.total)
        return text

    def _show(self, force=False):
        now = time.monotonic()
        if not force and now - self._shown < self.interval:
            return
        self._shown = now
        text = self.line()
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self):
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
