"""Bench: evaluate the whole policy pack over a 100,000-user snapshot, as a ratio to json.loads of that snapshot.

    python bench/bench_evaluate.py [--users 100000] [--repeat 5] [--snapshot FILE] [--profile]

The snapshot comes from a real audit (the same run_audit the CLI calls) against the synthetic tenant of
m365audit.simulator.tenant served by m365audit.simulator.server on 127.0.0.1; it is cached in the temp folder per size.
Both timings are the best of --repeat runs in this process; --profile prints the cProfile top of one evaluate.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from m365audit.evaluate import evaluate, load_pack
from m365audit.models import Snapshot  # noqa: E402


def make_snapshot(users: int, target: Path) -> None:
    """One audit of a municipality-shaped synthetic tenant; keeps its snapshot.json."""
    from m365audit.audit import runner
    from m365audit.graph import PlaceholderCredential
    from m365audit.simulator import GraphSimulator, SimConfig, TenantSpec

    spec = TenantSpec(users=users, service_principals=max(50, users // 50), grants=max(20, users // 100),
                      app_role_assignments=max(10, users // 500), copilot_users=max(3, users // 1000),
                      agent_identities=5)
    runner.build_credential = lambda *a, **k: PlaceholderCredential()  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as reports, GraphSimulator(spec, SimConfig(audit_polls=-1)) as sim:
        result = asyncio.run(runner.run_audit(runner.AuditOptions(reports=Path(reports), graph_root=sim.url,
                                                                  concurrency=8)))
        target.write_bytes((result.run_dir / "snapshot.json").read_bytes())


def best(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--snapshot", type=Path, default=None, help="use this snapshot.json instead")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    path = args.snapshot or Path(tempfile.gettempdir()) / f"m365audit-bench-snapshot-{args.users}.json"
    if not path.is_file():
        t = time.perf_counter()
        make_snapshot(args.users, path)
        print(f"snapshot: audited a {args.users}-user synthetic tenant in {time.perf_counter() - t:.1f} s -> {path}")
    raw = path.read_bytes()
    pack = load_pack()
    today = date(2026, 11, 28)
    loads_s, _ = best(lambda: json.loads(raw), args.repeat)
    parse_s, snapshot = best(lambda: Snapshot.model_validate_json(raw), args.repeat)
    eval_s, findings = best(lambda: evaluate(snapshot, pack, today), args.repeat)
    users = len(snapshot.sources["users"].data or []) if "users" in snapshot.sources else 0
    statuses: dict[str, int] = {}
    for f in findings:
        statuses[f.status.value] = statuses.get(f.status.value, 0) + 1
    print(f"snapshot {len(raw) / 2**20:.1f} MiB, {users} users, {len(pack.rules)} rules: {statuses}")
    print(f"json.loads(snapshot)              {loads_s * 1000:8.1f} ms  (1.00)")
    print(f"Snapshot.model_validate_json      {parse_s * 1000:8.1f} ms  ({parse_s / loads_s:.2f})")
    print(f"evaluate(snapshot, pack, today)   {eval_s * 1000:8.1f} ms  ({eval_s / loads_s:.2f})")
    print(f"ratio evaluate / json.loads = {eval_s / loads_s:.2f}")
    per_rule = sorted(((best(lambda r=r: evaluate(snapshot, pack.model_copy(update={"rules": [r]}), today), 1)[0],
                        r.id) for r in pack.rules), reverse=True)
    print("slowest rules: " + ", ".join(f"{rid} {sec * 1000:.0f} ms" for sec, rid in per_rule[:4]))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(evaluate, snapshot, pack, today)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
