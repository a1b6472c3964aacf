"""Bench helper: the floor of replaying a run folder: the longest page chain's delays, every body decoded once."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

START = time.perf_counter()


async def crawl(folder: Path) -> tuple[int, int]:
    """Each source's exchanges in order, one chain per source, every chain at once (the audit's waves can only
    be slower): each exchange waits its delay_ms, then its body is read and decoded once with json.loads."""
    chains: dict[str, list[dict[str, object]]] = {}
    for file in sorted(folder.glob("*.json")):
        doc = json.loads(file.read_bytes())
        chains.setdefault(str(doc.get("source")), []).append(doc)

    async def chain(docs: list[dict[str, object]]) -> None:
        for doc in docs:
            await asyncio.sleep(int(doc.get("delay_ms", 0)) / 1000)  # type: ignore[call-overload]
            response = doc["response"]
            assert isinstance(response, dict)
            raw = (folder / response["body_file"]).read_bytes()
            if "json" in str(response.get("headers", {})).lower():
                json.loads(raw)
            else:  # a usage report (CSV) or an empty body: read as text, as the audit does
                raw.decode("utf-8-sig")

    await asyncio.gather(*(chain(docs) for docs in chains.values()))
    return len(chains), max(len(docs) for docs in chains.values())


def main() -> None:
    folder = Path(sys.argv[1]) / "exchanges"
    imported = time.perf_counter()
    sources, longest = asyncio.run(crawl(folder))
    print(json.dumps({"import_s": imported - START, "fetch_s": time.perf_counter() - imported, "sources": sources,
                      "longest_chain": longest}))


if __name__ == "__main__":
    main()
