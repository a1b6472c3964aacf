"""Bench helper: the longest unavoidable Graph chains alone (users paging; the audit query), timed; one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime, timezone
from typing import Any

import httpx
from floor_child import Floor

from m365audit.collect import AUDIT_POLL_INTERVAL, SOURCES, FetchContext

START = time.perf_counter()


async def chains(base: str) -> dict[str, Any]:
    """Users paged with json.loads, beside the audit's own Purview fetcher (create, poll at the live interval,
    records): the same requests the audit makes on these two chains, and nothing else."""
    async with httpx.AsyncClient(timeout=120) as client:
        floor = Floor(base, client, 4)  # its pages() also serves the liveness query's first page
        ctx = FetchContext(now=datetime.now(timezone.utc), audit_poll_interval=AUDIT_POLL_INTERVAL)
        t0 = time.perf_counter()
        ends: dict[str, float] = {}

        async def users() -> None:
            await floor.get_collection(SOURCES["users"].url)
            ends["users"] = time.perf_counter() - t0

        async def audit_query() -> None:
            src = SOURCES["audit_ai_interactions"]
            assert src.fetcher is not None
            await src.fetcher(floor, src, ctx, {})
            ends["audit_query"] = time.perf_counter() - t0

        await asyncio.gather(users(), audit_query())
        return {"chains_s": ends, "requests": floor.requests}


def main() -> None:
    imported = time.perf_counter()
    out = asyncio.run(chains(sys.argv[1]))
    done = time.perf_counter()
    print(json.dumps({"import_s": imported - START, "fetch_s": done - imported, **out}))


if __name__ == "__main__":
    main()
