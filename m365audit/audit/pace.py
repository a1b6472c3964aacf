"""The garbage collector's pace while an audit runs: decoding Graph pages makes millions of short-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

AUDIT_THRESHOLDS = (20_000, 50, 100)
"""gc.set_threshold while an audit runs. CPython's default (700, 10, 10) starts a collection every 700 new
containers: a 999-user page is about 30,000 dicts and lists, so a night of 100,000 users ran some 1,300
collections, a few of them over every object the imports made (bench/RESULTS.md: 0.46 s of a replay's 3.5 s).
The decoded pages are freed by reference counting as soon as they are spooled; cycles are rare and still
collected, only later."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect cyclic garbage less often for the length of the block; the thresholds before it come back after."""
    before = gc.get_threshold()
    gc.set_threshold(*AUDIT_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
