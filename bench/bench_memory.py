"""Bench: peak RSS of full audits at several tenant sizes (10k, 100k, 300k users), a first night and a second.

Night 1 is a first run (compliant tenant, nothing to compare with). Night 2 runs into the same reports folder
against a changed tenant: --changes new users and --changes users now holding Copilot (the same number at
every size), so drift compares both nights' users, finds the changes and the licence rule fails with those
users named. What night 2 adds to night 1 is the cost of the changes; it should not grow with the tenant.
Each audit runs in its own process; its peak RSS (wait4's ru_maxrss) is its own, not the simulator's.
Night 2's run folder is then replayed offline (`audit --replay RUN_DIR`), which must give the same verdicts.
"""

from __future__ import annotations

import argparse
import tempfile

from common import ChildRun, Simulator, run_child


def night(users: int, reports: str, extra: list[str], replay_to: str | None = None, flags: tuple[str, ...] = (),
          ) -> tuple[ChildRun, float, ChildRun | None]:
    """One audit of a freshly started simulator, and optionally an offline replay of the run it wrote.

    Returns the audit, the MiB of Graph data it was served, and the replay (None when not asked).
    """
    with Simulator(users, extra=extra) as sim:
        run_child(["bench/floor_child.py", sim.url])  # warm the simulator's page cache
        sim.stats(reset=True)
        audit = run_child(["bench/audit_child.py", sim.url, reports, "4", *flags], timeout=1800)
        served = sim.stats()["bytes_sent"] / 2**20
        replay = None if replay_to is None else \
            run_child(["bench/replay_child.py", audit.output["run_dir"], replay_to, sim.url], timeout=1800)
        return audit, served, replay


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="10000,100000,300000", help="comma-separated user counts")
    p.add_argument("--changes", type=int, default=1000, help="new users, and users given Copilot, in night 2")
    p.add_argument("--pseudonymise", action="store_true", help="audit with --pseudonymise (a fixed bench key)")
    args = p.parse_args()
    rows = []
    for users in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            flags = ("--pseudonymise",) if args.pseudonymise else ()
            first, served, _ = night(users, f"{tmp}/reports", [], flags=flags)
            second, _, replay = night(users + args.changes, f"{tmp}/reports", ["--copilot-users", str(args.changes)],
                                      f"{tmp}/replayed", flags)
        assert replay is not None
        same = replay.output["statuses"] == second.output["statuses"]
        rows.append((users, served, first.max_rss_mib, second.max_rss_mib))
        print(f"{users:>8} users: {served:7.1f} MiB served; peak RSS night 1 {first.max_rss_mib:6.1f} MiB "
              f"({first.seconds:5.1f} s, {first.output['verdict']}), night 2 {second.max_rss_mib:6.1f} MiB "
              f"({second.seconds:5.1f} s, {second.output['verdict']} {second.output['statuses']}, "
              f"drift: {second.output.get('drift')})", flush=True)
        print(f"          peak RSS so far (MiB) at the end of each stage, night 2: {second.output['peak_mib_after']}")
        print(f"          offline replay of night 2 (audit --replay RUN_DIR): peak RSS {replay.max_rss_mib:6.1f} MiB, "
              f"{replay.seconds:5.1f} s, same verdicts: {same}")
    base_users, base_served, base_one, base_two = rows[0]
    for users, served, one, two in rows[1:]:
        print(f"{base_users} -> {users} users: data x{served / base_served:.1f}, peak RSS night 1 "
              f"x{one / base_one:.2f} (+{(one - base_one) / (served - base_served):.3f} MiB per MiB of Graph data), "
              f"night 2 x{two / base_two:.2f} (+{(two - base_two) / (served - base_served):.3f} MiB per MiB)")


if __name__ == "__main__":
    main()
