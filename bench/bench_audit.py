"""Bench: full audit vs the floor (fetch + json.loads), and requests issued vs the minimum, in one run."""

from __future__ import annotations

import argparse
import tempfile

from common import Simulator, ratio, run_child


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=2, help="alternating floor/audit rounds; the best of each counts")
    p.add_argument("--concurrency", type=int, default=4)
    args = p.parse_args()
    with Simulator(args.users, args.latency_ms) as sim, tempfile.TemporaryDirectory() as tmp:
        run_child(["bench/floor_child.py", sim.url, str(args.concurrency)])  # warm the simulator's page cache
        floors, audits, smalls = [], [], []
        minimum = sim.stats(reset=True)["minimum"]
        for n in range(args.rounds):
            sim.stats(reset=True)
            floors.append(run_child(["bench/floor_child.py", sim.url, str(args.concurrency)]))
            floor_requests = sim.stats()["total"]
            sim.stats(reset=True)
            audits.append(run_child(["bench/audit_child.py", sim.url, f"{tmp}/r{n}", str(args.concurrency)]))
            seen = sim.stats()
            smalls.append(run_child(["bench/audit_child.py", sim.url, f"{tmp}/s{n}", str(args.concurrency),
                                     "--small-result"]))
        floor = min(floors, key=lambda r: r.seconds)
        audit = min(audits, key=lambda r: r.seconds)
        small = min(smalls, key=lambda r: r.seconds)
        low = sum(minimum.values())
        print(f"tenant: {args.users} users, latency {args.latency_ms:g} ms, concurrency {args.concurrency}, "
              f"{seen['bytes_sent'] / 1e6:.1f} MB served per audit")
        print(f"requests: audit {seen['total']} (throttled {seen['throttled']}), floor {floor_requests}, "
              f"minimum {low} -> issued/minimum = {ratio(seen['total'], low)} (target <= 1.05)")
        for key, n in sorted(seen["by_source"].items()):
            if n != minimum.get(key):
                print(f"  {key}: {n} requests, minimum {minimum.get(key)}")
        print(f"audit: verdict {audit.output['verdict']} {audit.output['statuses']}")
        print(f"time, process wall: audit {audit.seconds:.2f} s, floor {floor.seconds:.2f} s -> "
              f"audit/floor = {ratio(audit.seconds, floor.seconds)} (target <= 2.0)")
        a_in, f_in = audit.output["audit_s"], floor.output["fetch_s"]
        print(f"time, after imports:  audit {a_in:.2f} s, floor {f_in:.2f} s -> audit/floor = {ratio(a_in, f_in)}")
        print(f"what-if, asyncio.run returning a small summary instead of the AuditResult: audit {small.seconds:.2f} s"
              f" -> audit/floor = {ratio(small.seconds, floor.seconds)}")
        rounds = [[round(r.seconds, 2) for r in xs] for xs in (audits, smalls, floors)]
        print(f"all rounds: audit {rounds[0]}, what-if {rounds[1]}, floor {rounds[2]}")
        print(f"audit phases (s): {audit.output['phases']}")
        # a first night: no drift, so every stored page read back is tonight's (an older child prints no counters)
        dec = audit.output.get("decodes") or {"graph_bodies": 0, "stored_pages": 0}
        print(f"decodes per page of tonight's Graph data: ({dec['graph_bodies']} bodies + {dec['stored_pages']} "
              f"spooled pages read again) / {dec['graph_bodies']} bodies = "
              f"{(dec['graph_bodies'] + dec['stored_pages']) / max(1, dec['graph_bodies']):.2f} (target 1.00)")
        print(f"peak RSS: audit {audit.max_rss_mib:.0f} MiB, floor {floor.max_rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
