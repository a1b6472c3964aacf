"""Bench helper: the floor, fetching the audit's pages with plain httpx + json.loads only; prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import httpx

from m365audit.collect import SOURCES, FetchContext
from m365audit.collect.sources import resolve_order

START = time.perf_counter()


class Floor:
    """The thinnest GraphReader: same requests and the same fetchers as the audit, nothing else."""

    def __init__(self, base: str, client: httpx.AsyncClient, concurrency: int) -> None:
        self.base, self.client, self.sem = base, client, asyncio.Semaphore(concurrency)
        self.requests = 0
        self.bytes = 0

    async def _get(self, url: str, body: dict[str, Any] | None = None) -> Any:
        full = url if url.startswith("http") else self.base + url
        async with self.sem:
            r = await (self.client.post(full, json=body) if body is not None else self.client.get(full))
        r.raise_for_status()
        self.requests += 1
        self.bytes += len(r.content)
        return r

    async def get_object(self, url: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((await self._get(url)).content)
        return doc

    async def pages(self, url: str) -> AsyncIterator[list[Any]]:
        next_url: str | None = url
        while next_url:
            doc = json.loads((await self._get(next_url)).content)
            yield doc["value"]
            next_url = doc.get("@odata.nextLink")

    async def get_collection(self, url: str) -> list[Any]:
        items: list[Any] = []
        async for page in self.pages(url):
            items.extend(page)
        return items

    async def get_text(self, url: str) -> str:
        return (await self._get(url)).content.decode("utf-8-sig")

    async def post_object(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((await self._get(url, body)).content)
        return doc


async def crawl(base: str, concurrency: int) -> Floor:
    async with httpx.AsyncClient(timeout=120) as client:
        floor = Floor(base, client, concurrency)
        ctx = FetchContext(now=datetime.now(timezone.utc), audit_poll_interval=0.0)
        data: dict[str, Any] = {}
        needed = {d for s in SOURCES.values() for d in s.depends_on}
        for wave in resolve_order([k for k, s in SOURCES.items() if not s.delegated]):  # an app-only night
            async def one(key: str) -> None:
                src = SOURCES[key]
                deps = {d: data[d] for d in src.depends_on}
                if src.fetcher is not None:
                    data[key] = (await src.fetcher(floor, src, ctx, deps)).data
                elif src.shape == "object":
                    data[key] = await floor.get_object(src.url)
                else:
                    items = await floor.get_collection(src.url)  # dropped at once, like a stream, unless a
                    data[key] = items if key in needed else len(items)  # later source's fetcher reads it
            await asyncio.gather(*(one(k) for k in wave))
        return floor


def main() -> None:
    base = sys.argv[1]
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    imported = time.perf_counter()
    floor = asyncio.run(crawl(base, concurrency))
    done = time.perf_counter()
    print(json.dumps({"import_s": imported - START, "fetch_s": done - imported, "requests": floor.requests,
                      "bytes": floor.bytes}))


if __name__ == "__main__":
    main()
