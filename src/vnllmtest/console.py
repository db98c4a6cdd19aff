"""Notices of long one-time steps (a hub download, a bundled model's conversion) that must reach the terminal
even while pytest captures the output of the test that triggered them. The pytest plugin says how to get past
its capture (`use`); elsewhere the notices go straight to standard error."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

HEARTBEAT = 30.0  # seconds between "still running" lines of a long step

_uncaptured: Callable[[], AbstractContextManager[object]] = nullcontext
_prefix = "vnllmtest"


def use(uncaptured: Callable[[], AbstractContextManager[object]], worker: str | None = None) -> None:
    """Write notices inside `uncaptured()` (pytest's capture suspended), marked with the xdist worker's id."""
    global _uncaptured, _prefix
    _uncaptured = uncaptured
    _prefix = f"vnllmtest [{worker}]" if worker else "vnllmtest"


def say(text: str) -> None:
    """One line on the terminal, past pytest's capture."""
    with _uncaptured():
        sys.stderr.write(f"\n{_prefix}: {text}\n")
        sys.stderr.flush()


@contextmanager
def shown(headline: str) -> Iterator[None]:
    """Announce a long step, show whatever it prints (a library's progress bars), a line every HEARTBEAT seconds
    while it runs, and how long it took."""
    started = time.perf_counter()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT):
            sys.stderr.write(f"{_prefix}: ... still running ({time.perf_counter() - started:.0f} s)\n")
            sys.stderr.flush()

    with _uncaptured():
        say(headline)
        ticker = threading.Thread(target=heartbeat, daemon=True)
        ticker.start()
        try:
            yield
        except BaseException:
            sys.stderr.write(f"{_prefix}: ... failed after {time.perf_counter() - started:.0f} s\n")
            raise
        else:
            sys.stderr.write(f"{_prefix}: ... done in {time.perf_counter() - started:.1f} s\n")
        finally:
            done.set()
            ticker.join()
            sys.stderr.flush()
