"""Bench: `m365audit --help` wall time against `python -c "import click"`, best and median of N runs."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from common import ENV, PY, ROOT


def timed(cmd: list[str], n: int, env: dict[str, str] = ENV, cwd: Path = ROOT) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-n", type=int, default=30)
    p.add_argument("--before", type=Path, default=None,
                   help="another m365audit tree (e.g. `git archive COMMIT | tar -x -C DIR`) timed beside")
    args = p.parse_args()
    help_cmd = [PY, "-m", "m365audit", "--help"]
    before_env = {**ENV, "PYTHONPATH": str(args.before)} if args.before else None
    timed(help_cmd, 2)  # warm the page cache and .pyc files
    if before_env and args.before:
        timed(help_cmd, 2, before_env, args.before)
    helps, befores, clicks, bare = [], [], [], []
    for _ in range(args.n):  # interleaved, so machine noise hits all alike
        helps += timed(help_cmd, 1)
        if before_env and args.before:
            befores += timed(help_cmd, 1, before_env, args.before)  # -m puts the cwd first
        clicks += timed([PY, "-c", "import click"], 1)
        bare += timed([PY, "-c", "pass"], 1)
    rows = [("m365audit --help", helps), (f"before: {args.before}", befores),
            ("python -c 'import click'", clicks), ("python -c pass", bare)]
    for name, xs in rows:
        if xs:
            print(f"{name:26} best {min(xs) * 1000:6.1f} ms, median {statistics.median(xs) * 1000:6.1f} ms")
    for name, xs in (("--help", helps), ("before --help", befores)):
        if xs:
            print(f"{name} / import click: best {min(xs) / min(clicks):.2f}, "
                  f"median {statistics.median(xs) / statistics.median(clicks):.2f} (target <= 1.20)")


if __name__ == "__main__":
    main()
