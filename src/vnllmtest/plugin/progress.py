"""Progress of the batched runs on the terminal, past pytest's output capture. One process draws a bar per
run. Under pytest-xdist each worker writes lines marked with its id instead (a worker's standard error is the
controller's terminal; bars of several processes would overwrite each other): when a run starts, at most
every LINE_INTERVAL seconds while it runs, and when it ends."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import pytest

from vnllmtest import console

LINE_INTERVAL = 10.0
Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


def uncaptured(config: pytest.Config) -> Callable[[], AbstractContextManager[object]]:
    """A context in which writes reach the terminal although pytest captures output."""
    capture = config.pluginmanager.getplugin("capturemanager")
    return capture.global_and_fixture_disabled if capture else nullcontext


def show_progress(config: pytest.Config, worker: str | None) -> Progress:
    """The runner's progress display for this process; notices of long steps (vnllmtest.console) go the same way."""
    reveal = uncaptured(config)
    console.use(reveal, worker)

    @contextmanager
    def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
        if total == 0:
            yield lambda done: None
            return
        with reveal():
            if worker is None:
                from tqdm import tqdm

                sys.stderr.write("\n")
                with tqdm(total=total, desc=description, unit="item", file=sys.stderr, mininterval=1.0) as bar:
                    yield bar.update
            else:
                with _lines(f"vnllmtest [{worker}] {description}", total) as advance:
                    yield advance

    return progress


@contextmanager
def _lines(label: str, total: int) -> Iterator[Callable[[int], None]]:
    started = last = time.perf_counter()
    done = 0

    def write(text: str) -> None:
        sys.stderr.write(f"{label}: {text}\n")
        sys.stderr.flush()

    def advance(count: int) -> None:
        nonlocal done, last
        done += count
        now = time.perf_counter()
        if now - last >= LINE_INTERVAL and done < total:
            write(f"{done}/{total} items ({now - started:.0f} s)")
            last = now

    write(f"0/{total} items")
    yield advance
    write(f"{done}/{total} items, done in {time.perf_counter() - started:.1f} s")
