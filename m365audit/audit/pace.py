"""The garbage collector's pace while an audit runs: decoding Graph pages makes millions of short-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

AUDIT_THRESHOLDS = (5_000, 10, 10)
"""gc.set_threshold while an audit runs. CPython's default (700, 10, 10) starts a collection every 700 new
containers: a 999-user page is about 30,000 dicts and lists, so a night of 100,000 users ran some 1,300
collections, and the oldest generation's held every object the imports made. With those objects frozen and
this threshold, a 100k-user night runs about 120 collections: 0.1 s of CPU instead of 0.35-0.57 s, at the
same peak memory (bench/RESULTS.md). Fewer young collections still (20,000, 50, 100) let reference cycles
holding whole Graph bodies live on: 150 MiB instead of 80 at 100,000 users."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """For the length of the block: what is alive now (modules, the policy pack) is frozen out of every
    collection, and young objects are collected every AUDIT_THRESHOLDS[0] containers; both undone after."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*AUDIT_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
