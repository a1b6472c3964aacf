"""Bench: audit wall time over the longest unavoidable Graph chain, at realistic Graph latency (issue 15 item 4).

Latency: every request waits --latency-ms (100: a small source's answer), plus --item-latency-ms per item of a
collection page (0.2: a page of 999 users takes 300 ms). The Purview audit query runs --audit-seconds after its
creation; the audit polls it every 10 s (collect.AUDIT_POLL_INTERVAL, as live). A real query takes minutes (2 to
10); the default of 60 s is that, scaled down 2 to 10 times, so a round takes about two minutes; the shape is
kept: the query is the longest chain, and users paging (30 s at 100k users) overlaps with it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import Simulator, ratio, run_child


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--item-latency-ms", type=float, default=0.2)
    p.add_argument("--audit-seconds", type=float, default=60.0)
    p.add_argument("--rounds", type=int, default=1, help="chain/audit rounds; the best of each counts")
    p.add_argument("--before", type=Path, default=None,
                   help="another m365audit tree (e.g. `git archive COMMIT | tar -x -C DIR`) audited beside")
    args = p.parse_args()
    extra = ["--item-latency-ms", str(args.item_latency_ms), "--audit-seconds", str(args.audit_seconds)]
    with Simulator(args.users, args.latency_ms, extra) as sim, tempfile.TemporaryDirectory() as tmp:
        run_child(["bench/chain_child.py", sim.url])  # warm the simulator's page cache
        chains, audits, befores = [], [], []
        for n in range(args.rounds):
            chains.append(run_child(["bench/chain_child.py", sim.url]))
            audits.append(run_child(["bench/audit_child.py", sim.url, f"{tmp}/a{n}", "4"]))
            if args.before is not None:
                befores.append(run_child(["bench/audit_child.py", sim.url, f"{tmp}/b{n}", "4"], code=args.before))
        chain = min(chains, key=lambda r: r.seconds)
        audit = min(audits, key=lambda r: r.seconds)
        print(f"tenant: {args.users} users; latency {args.latency_ms:g} ms + {args.item_latency_ms:g} ms per item "
              f"(a page of 999: {args.latency_ms + 999 * args.item_latency_ms:.0f} ms); audit query runs "
              f"{args.audit_seconds:g} s, polled every 10 s")
        print(f"chains alone (s, after imports): {chain.output['chains_s']}; process wall {chain.seconds:.2f} s")
        print(f"audit: verdict {audit.output['verdict']} {audit.output['statuses']}")
        print(f"audit wall / longest chain: process wall {audit.seconds:.2f} s / {chain.seconds:.2f} s = "
              f"{ratio(audit.seconds, chain.seconds)} (target <= 1.05); after imports "
              f"{audit.output['audit_s']:.2f} s / {chain.output['fetch_s']:.2f} s = "
              f"{ratio(audit.output['audit_s'], chain.output['fetch_s'])}")
        print(f"audit phases (s): {audit.output['phases']}")
        if befores:
            before = min(befores, key=lambda r: r.seconds)
            print(f"before ({args.before}): process wall {before.seconds:.2f} s -> "
                  f"{ratio(before.seconds, chain.seconds)}; after imports {before.output['audit_s']:.2f} s -> "
                  f"{ratio(before.output['audit_s'], chain.output['fetch_s'])}; verdict {before.output['verdict']} "
                  f"{before.output['statuses']}; phases {before.output['phases']}")
        rounds = [[round(r.seconds, 2) for r in xs] for xs in (audits, befores, chains)]
        print(f"all rounds (process wall): audit {rounds[0]}, before {rounds[1]}, chains {rounds[2]}")


if __name__ == "__main__":
    main()
