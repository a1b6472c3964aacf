"""Bench: the audit under a tenant-wide request budget (429 + Retry-After), by requests in flight."""

from __future__ import annotations

import argparse
import tempfile

from common import Simulator, run_child


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--rate-limit", type=float, default=10.0, help="requests per second the tenant allows")
    p.add_argument("--levels", default="1,2,4,8,16")
    args = p.parse_args()
    with Simulator(args.users, args.latency_ms, ["--rate-limit", str(args.rate_limit)]) as sim, \
            tempfile.TemporaryDirectory() as tmp:
        print(f"{args.users} users, latency {args.latency_ms:g} ms, budget {args.rate_limit:g} requests/s")
        for level in args.levels.split(","):
            sim.stats(reset=True)
            audit = run_child(["bench/audit_child.py", sim.url, f"{tmp}/c{level}", level])
            seen = sim.stats()
            print(f"  concurrency {level:>2}: {audit.seconds:6.2f} s, {seen['total']} requests of which "
                  f"{seen['throttled']} got 429, verdict {audit.output['verdict']} {audit.output['statuses']}",
                  flush=True)


if __name__ == "__main__":
    main()
