"""Stopping a long batch on the first Ctrl-C (SIGINT) or SIGTERM, wherever it is.

A ``KeyboardInterrupt`` raised by Python's default handler can land anywhere, including inside a
garbage-collection callback of XLA's, where it is printed and swallowed and the run carries on.
``StopSignals`` instead installs a handler that only records the signal (``requested``); the
batch calls ``check()`` between its steps (and the fit between its chunks), which raises
``Interrupted`` there. A step that does not return to Python for long (XLA compiling, one chunk of
a slow fit) cannot see the flag, so the signal is also written to a wakeup pipe
(``signal.set_wakeup_fd``, written by the C-level handler at once) that a watchdog thread reads:
when the main thread has not finished stopping ``grace`` seconds
after the signal, or on a second signal, the watchdog calls ``on_force`` (write what finished,
remove what is half-written) and ends the process with ``os._exit(128 + signal)``.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 3.0  # the main thread's time to stop cleanly before the watchdog ends the process


def exit_status(signum: int) -> int:
    """The shell's status of a process ended by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


class Interrupted(BaseException):  # noqa: N818 - not an error: the user asked to stop
    """Raised by ``StopSignals.check`` after a stop signal (a BaseException, as KeyboardInterrupt,
    so that no ``except Exception`` of a step takes it for that step's failure)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class StopSignals:
    """Context manager: while inside, SIGINT / SIGTERM set ``requested`` (the signal number)
    instead of raising. ``on_force(signum)`` runs in the watchdog thread just before it ends the
    process; keep it short and have it take the same lock as the main thread's bookkeeping.

    Outside the main thread (where Python allows no signal handlers) it does nothing."""

    def __init__(
        self,
        on_force: Callable[[int], None] | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        self.on_force = on_force
        self.grace = float(grace)
        self.requested: int | None = None
        self._finished = threading.Event()
        self._previous: dict[int, object] = {}
        self._pipe: tuple[int, int] | None = None
        self._old_wakeup = -1
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # set_wakeup_fd needs it
        self._pipe = (read_fd, write_fd)
        self._old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._thread = threading.Thread(target=self._watch, name="occface-stop", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finished.set()
        if self._pipe is None:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._old_wakeup)
        os.close(self._pipe[1])  # the watchdog's read returns b"" and it ends
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        os.close(self._pipe[0])
        self._pipe = None

    def _handle(self, signum: int, _frame: object) -> None:
        if self.requested is None:
            self.requested = signum
            name = signal.Signals(signum).name
            print(f"occface: {name} received, stopping (again to stop at once)", file=sys.stderr)

    def check(self) -> None:
        """Raise ``Interrupted`` when a stop signal has arrived."""
        if self.requested is not None:
            raise Interrupted(self.requested)

    def _watch(self) -> None:
        """Wait for a signal byte; then for ``grace`` seconds or another signal, whichever first,
        and end the process unless the main thread has finished by then."""
        assert self._pipe is not None
        read_fd, deadline, first = self._pipe[0], None, int(signal.SIGINT)
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([read_fd], [], [], timeout)
            if self._finished.is_set():
                return
            if not ready:  # the grace period is over
                self._force(first)
            data = os.read(read_fd, 64)
            if not data:
                return  # __exit__ closed the pipe
            for signum in (b for b in data if b in SIGNALS):
                if deadline is not None:  # a second signal: at once
                    self._force(first)
                deadline, first = time.monotonic() + self.grace, signum

    def _force(self, signum: int) -> None:
        first = self.requested if self.requested is not None else signum
        try:
            if self.on_force is not None:
                self.on_force(first)
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001, S110 - exiting anyway
                    pass
            os._exit(exit_status(first))
