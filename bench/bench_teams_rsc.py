"""Bench: what reading Teams RSC grants (one request per team) costs on a 2,000-team simulated tenant."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from m365audit.collect import FetchContext, collect  # noqa: E402
from m365audit.graph import GraphSession, PlaceholderCredential  # noqa: E402
from m365audit.simulator import GraphSimulator, SimConfig, TenantSpec  # noqa: E402


def read(url: str, keys: list[str], concurrency: int) -> tuple[float, int]:
    """Seconds and requests to collect the given sources through the real SDK stack."""
    async def go() -> tuple[float, int]:
        transport = httpx.AsyncHTTPTransport(verify=False)
        try:
            async with GraphSession(PlaceholderCredential(), graph_root=url, transport=transport,
                                    concurrency=concurrency) as session:
                start = time.perf_counter()
                results = await collect(session, keys, FetchContext(now=datetime.now(timezone.utc)))
                seconds = time.perf_counter() - start
                assert all(r.ok for r in results.values()), {k: r.error for k, r in results.items() if not r.ok}
                return seconds, sum(r.requests for r in results.values())
        finally:
            await transport.aclose()

    return asyncio.run(go())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--teams", type=int, default=2000)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--levels", default="4,8")
    args = p.parse_args()
    spec = TenantSpec(users=2000, service_principals=50, teams=args.teams, seed=3)
    with GraphSimulator(spec, SimConfig(latency_ms=args.latency_ms)) as sim:
        print(f"{args.teams} teams, simulated latency {args.latency_ms:g} ms per request")
        base_s, base_n = read(sim.url, ["users"], 4)
        print(f"  reference: users (2,000, $top=999): {base_n} requests, {base_s:.2f} s")
        for level in (int(x) for x in args.levels.split(",")):
            seconds, requests = read(sim.url, ["teams_rsc_grants"], level)
            print(f"  concurrency {level}: teams + permissionGrants {requests} requests "
                  f"({requests / args.teams:.3f} per team), {seconds:.2f} s "
                  f"({seconds / args.teams * 1000:.1f} ms per team; {seconds / base_s:.0f}x the users source)",
                  flush=True)


if __name__ == "__main__":
    main()
