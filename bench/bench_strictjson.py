"""Bench: the strict JSON parser (issue 13) against plain json.loads on one 999-user Graph page, as ratios.

    python bench/bench_strictjson.py [--rounds 15] [--repeat 20]

The page is the simulator's answer to the audit's own users request ($select of sources.py, $top=999), made
in-process. Candidates run interleaved, each round starting with the next one; the time is CPU time
(time.process_time), the best and the median of the rounds. Printed: each candidate's time per page and its
ratio to json.loads(bytes), the floor.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from m365audit.collect import SOURCES
from m365audit.evidence import strict_loads
from m365audit.evidence.strictjson import check_depth
from m365audit.graph.jsonparse import parse as graph_parse
from m365audit.simulator import TenantSpec
from m365audit.simulator.tenant import SimTenant


def users_page() -> bytes:
    tenant = SimTenant(TenantSpec(users=2000, service_principals=50, grants=20, app_role_assignments=10,
                                  copilot_users=20))
    parts = urlsplit("https://graph.microsoft.com" + SOURCES["users"].url)
    reply = tenant.answer("GET", parts.path, parts.query, b"", "https://graph.microsoft.com")
    assert reply.status == 200 and len(json.loads(reply.body)["value"]) == 999
    return reply.body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=20, help="parses per candidate per round")
    args = parser.parse_args()
    raw = users_page()
    line = json.dumps(json.loads(raw)["value"], ensure_ascii=False, separators=(",", ":")).encode()[1:-1]
    candidates: dict[str, Callable[[], Any]] = {
        "json.loads (floor)": lambda: json.loads(raw),
        "strict loads (stored page: dups, depth, UTF-8)": lambda: strict_loads(b"[" + line + b"]", repair=False),
        "strict loads + inner keys": lambda: strict_loads(raw, inner_keys=set()),
        "graph jsonparse.parse (the Graph body path)": lambda: graph_parse(raw, "https://graph.microsoft.com/x"),
        "part: depth pre-pass alone": lambda: check_depth(raw),
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            start = time.process_time()
            for _ in range(args.repeat):
                candidates[name]()
            times[name].append((time.process_time() - start) / args.repeat)
    floor_best, floor_median = min(times[names[0]]), statistics.median(times[names[0]])
    print(f"one users page: 999 users, {len(raw) / 1024:.0f} KiB; {args.rounds} rounds x {args.repeat} parses")
    print(f"{'candidate':48s} {'best ms':>8s} {'x floor':>8s} {'median ms':>10s} {'x floor':>8s}")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        print(f"{name:48s} {best * 1000:8.2f} {best / floor_best:8.2f} {median * 1000:10.2f} "
              f"{median / floor_median:8.2f}")


if __name__ == "__main__":
    main()
