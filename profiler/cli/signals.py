"""Stop signals for every hfp command, in one place: SIGINT, SIGTERM and SIGHUP all become the interruption that
Ctrl-C raises.

``stop_signals()`` installs handlers that raise ``profiler.errors.Interrupted`` (a ``KeyboardInterrupt``
carrying the signal's name), so the code that already keeps finished work on Ctrl-C (the runner saves finished
points, a sweep keeps finished configurations, a safety run keeps finished configurations) does the same for a
``kill -TERM``, a closed terminal or a job scheduler stopping the job. The command then exits with status
128 + the signal's number, as a shell reports a process stopped by that signal.

Details that keep a signal from being lost:

- SIGINT is handled even when hfp inherited it *ignored* (a background job of a non-interactive shell, ``cmd &``
  in a script or CI job, starts with SIGINT ignored, so before this ``kill -INT`` did nothing and the run went
  on to the end); SIGHUP inherited ignored (``nohup hfp run``) stays ignored, as ``nohup`` asks.
- The first signal raises; a second one while the finished work is being saved is noted but does not raise
  (so the save completes); a third raises again, for a user who really wants out.
- A signal whose exception is swallowed (say, raised inside a ctypes callback, where ctypes prints and drops
  it) is raised again by ``check()`` at the next safe point (the progress callbacks call it), and the command
  exits 128 + signal whatever happened.

It owns signal dispositions only while a command runs and restores the previous handlers afterwards; it
must not know what a command does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from profiler.errors import Interrupted

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)


class Caught:
    """What ``stop_signals`` saw: the first stop signal (or None) and how many arrived."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.count = 0
        self.raised = 0

    @property
    def name(self) -> str | None:
        """The first signal's name, e.g. ``SIGTERM``."""
        return signal.Signals(self.signum).name if self.signum is not None else None

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal's number, or None when no signal arrived."""
        return 128 + self.signum if self.signum is not None else None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        """The installed handler: note the signal; raise on the first and from the third on."""
        self.count += 1
        if self.signum is None:
            self.signum = signum
        if self.count == 1 or self.count >= 3:
            self.raised += 1
            raise Interrupted(self.signum)

    def check(self) -> None:
        """Raise the interruption again if a signal has arrived: called at safe points of work that stops at the
        first interruption (a progress callback), it only runs when the first exception was swallowed."""
        if self.signum is not None:
            self.raised += 1
            raise Interrupted(self.signum)


_current: Caught | None = None


def check() -> None:
    """At a safe point (between repetitions, probes): raise a stop signal that arrived but was swallowed."""
    if _current is not None:
        _current.check()


@contextmanager
def stop_signals() -> Iterator[Caught]:
    """Turn SIGINT, SIGTERM and SIGHUP into ``Interrupted`` inside the block; restore the old handlers after.

    Outside the main thread (where Python cannot install handlers) it installs nothing and yields an empty
    ``Caught``.
    """
    global _current
    caught = Caught()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous: dict[signal.Signals, Any] = {}
    for sig in STOP_SIGNALS:
        old = signal.getsignal(sig)
        if sig != signal.SIGINT and old == signal.SIG_IGN:
            continue  # nohup: the user asked for this signal to be ignored
        try:
            previous[sig] = signal.signal(sig, caught.handler)
        except (OSError, ValueError):  # pragma: no cover - platform without this signal
            continue
    outer, _current = _current, caught
    try:
        yield caught
    finally:
        _current = outer
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
