"""Bench: peak RSS of one full audit at several tenant sizes (10k, 100k, 300k users by default)."""

from __future__ import annotations

import argparse
import tempfile

from common import Simulator, run_child


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="10000,100000,300000", help="comma-separated user counts")
    args = p.parse_args()
    rows = []
    for users in (int(s) for s in args.sizes.split(",")):
        with Simulator(users) as sim, tempfile.TemporaryDirectory() as tmp:
            run_child(["bench/floor_child.py", sim.url])  # warm the simulator's page cache
            sim.stats(reset=True)
            audit = run_child(["bench/audit_child.py", sim.url, f"{tmp}/reports"], timeout=1800)
            served = sim.stats()["bytes_sent"] / 2**20
        rows.append((users, served, audit.max_rss_mib, audit.seconds, audit.output["verdict"]))
        print(f"{users:>8} users: {served:7.1f} MiB served, peak RSS {audit.max_rss_mib:7.1f} MiB, "
              f"{audit.seconds:6.1f} s, verdict {audit.output['verdict']}", flush=True)
        print(f"          peak RSS so far (MiB) at the end of each stage: {audit.output['peak_mib_after']}")
    base_users, base_served, base_rss = rows[0][:3]
    for users, served, rss, _, _ in rows[1:]:
        print(f"{base_users} -> {users} users: data x{served / base_served:.1f}, peak RSS x{rss / base_rss:.1f} "
              f"(+{(rss - base_rss) / (served - base_served):.2f} MiB RSS per MiB of Graph data)")


if __name__ == "__main__":
    main()
