"""Named timing spans of a run, for the benchmark: off unless ASS_TIMINGS names a file.

The benchmark runs the installed tool with ASS_TIMINGS set and reads the spans it wrote,
so what it reports is the product's own code, never a copy of the flow. Off, a span costs
one dictionary look-up.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

_spans: list[tuple[str, float, float]] = []
_origin = time.perf_counter()
_target = os.environ.get("ASS_TIMINGS")


def now() -> float:
    return time.perf_counter()


def record(name: str, started: float) -> None:
    """Record a span that began at `started` (from `now()`) and ends now."""
    if _target:
        _spans.append((name, started - _origin, now() - _origin))


@contextlib.contextmanager
def span(name: str) -> Iterator[None]:
    """Time the block as the span `name`."""
    started = now()
    try:
        yield
    finally:
        record(name, started)


def _write() -> None:
    if not _target or not _spans:
        return
    line = json.dumps({"pid": os.getpid(), "spans": [list(s) for s in _spans]})
    with contextlib.suppress(OSError), Path(_target).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


if _target:
    atexit.register(_write)
