"""Bench: full audit wall time by requests in flight (--concurrency), the floor beside each, in one run."""

from __future__ import annotations

import argparse
import tempfile

from common import Simulator, ratio, run_child


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--levels", default="1,2,4,8,16")
    args = p.parse_args()
    with Simulator(args.users, args.latency_ms) as sim, tempfile.TemporaryDirectory() as tmp:
        run_child(["bench/floor_child.py", sim.url])  # warm the simulator's page cache
        print(f"{args.users} users, latency {args.latency_ms:g} ms")
        for level in args.levels.split(","):
            floor = run_child(["bench/floor_child.py", sim.url, level])
            audit = run_child(["bench/audit_child.py", sim.url, f"{tmp}/c{level}", level])
            collect = audit.output["phases"]["collect"]
            print(f"  concurrency {level:>2}: audit {audit.seconds:6.2f} s (collect {collect:.2f} s), "
                  f"floor {floor.seconds:5.2f} s, audit/floor {ratio(audit.seconds, floor.seconds)}", flush=True)


if __name__ == "__main__":
    main()
