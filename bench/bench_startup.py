"""Bench: `m365audit --help` wall time against `python -c "import click"`, best and median of N runs."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from common import ENV, PY, ROOT


def timed(cmd: list[str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV, cwd=ROOT)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-n", type=int, default=15)
    args = p.parse_args()
    timed([PY, "-m", "m365audit", "--help"], 2)  # warm the page cache and .pyc files
    helps, clicks, bare = [], [], []
    for _ in range(args.n):  # interleaved, so machine noise hits all three alike
        helps += timed([PY, "-m", "m365audit", "--help"], 1)
        clicks += timed([PY, "-c", "import click"], 1)
        bare += timed([PY, "-c", "pass"], 1)
    for name, xs in (("m365audit --help", helps), ("python -c 'import click'", clicks), ("python -c pass", bare)):
        print(f"{name:26} best {min(xs) * 1000:6.1f} ms, median {statistics.median(xs) * 1000:6.1f} ms")
    print(f"--help / import click: best {min(helps) / min(clicks):.2f}, "
          f"median {statistics.median(helps) / statistics.median(clicks):.2f}")


if __name__ == "__main__":
    main()
