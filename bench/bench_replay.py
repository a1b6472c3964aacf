"""Bench: `audit --replay RUN_DIR` of a recorded night (body files, delay_ms per exchange) vs its floor, one run."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from common import Simulator, ratio, run_child


def add_delay(run_dir: Path, delay_ms: int) -> int:
    """Every exchange of the copied night waits delay_ms when replayed (FIXTURES.md); returns how many."""
    files = sorted((run_dir / "exchanges").glob("*.json"))
    for file in files:
        doc = json.loads(file.read_bytes())
        doc["delay_ms"] = delay_ms
        file.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    return len(files)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--delay-ms", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2, help="alternating floor/replay rounds; the best of each counts")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with Simulator(args.users, 0) as sim:
            night = run_child(["bench/audit_child.py", sim.url, f"{tmp}/recorded"])
            graph_url = sim.url
        recording = Path(tmp) / "night"
        shutil.copytree(night.output["run_dir"], recording)
        exchanges = add_delay(recording, args.delay_ms)
        floors, replays = [], []
        for n in range(args.rounds):
            floors.append(run_child(["bench/replay_floor_child.py", str(recording)]))
            replays.append(run_child(["bench/replay_child.py", str(recording), f"{tmp}/replayed{n}", graph_url]))
        floor = min(floors, key=lambda r: r.seconds)
        replay = min(replays, key=lambda r: r.seconds)
        print(f"night: {args.users} users, {exchanges} exchanges (body files), delay {args.delay_ms} ms each; "
              f"longest chain {floor.output['longest_chain']} exchanges over {floor.output['sources']} sources")
        print(f"replay: verdict {replay.output['verdict']} {replay.output['statuses']} "
              f"(recorded night: {night.output['verdict']} {night.output['statuses']})")
        print(f"time, process wall: replay {replay.seconds:.2f} s, floor {floor.seconds:.2f} s -> "
              f"replay/floor = {ratio(replay.seconds, floor.seconds)} (target <= 1.50)")
        dec = replay.output.get("decodes") or {"graph_bodies": 0, "stored_pages": 0, "decoded_pages": 0}
        print(f"decodes per page of the replayed night: ({dec['graph_bodies']} bodies + {dec['stored_pages']} "
              f"spooled JSON pages read again) / {dec['graph_bodies']} bodies = "
              f"{(dec['graph_bodies'] + dec['stored_pages']) / max(1, dec['graph_bodies']):.2f}; "
              f"re-reads of already decoded pages (no JSON): {dec['decoded_pages']}")
        rounds = [[round(r.seconds, 2) for r in xs] for xs in (replays, floors)]
        print(f"all rounds: replay {rounds[0]}, floor {rounds[1]}")
        print(f"peak RSS: replay {replay.max_rss_mib:.0f} MiB, floor {floor.max_rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
