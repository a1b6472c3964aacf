"""python -m tools.screenshots: docs/screenshots/*.png of the example tenants' reports at 1366 and 390 px."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import shutil
import sys
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

import yaml

from m365audit.audit import AuditOptions, run_audit
from m365audit.drift import write_index
from m365audit.models import Lang
from tools.chromium import Chromium, find_chromium

ROOT = Path(__file__).resolve().parent.parent
TENANTS = ROOT / "fixtures" / "tenants"
NIGHTS = ROOT / "fixtures" / "nights"
OUT = ROOT / "docs" / "screenshots"
NOW = datetime(2026, 11, 28, 2, 15, tzinfo=timezone.utc)  # the time of the example report: same input, same PNG
# (viewport width, first-screen height): a 1366 × 768 laptop and a 390 × 844 phone.
SCREENS = ((1366, 768), (390, 844))
# The red, brown and green first screens (file name, fixture tenant, language).
REPORTS: tuple[tuple[str, str, Lang], ...] = (
    ("report-not-compliant", "copilot-pilot", "nl"), ("report-incomplete", "permissions-missing", "nl"),
    ("report-compliant", "gemeente-voorbeeld", "nl"))
SOURCES_SHOT = "report-incomplete"  # its sources table holds Graph errors with long URLs: shot on its own
SOURCES_SECTION = 'section[aria-labelledby="h-sources"]'
HISTORY_PAIR = "new-ai-app-grant"  # two nights of one tenant: the history page and tonight's drift
COLOURS = 96  # palette size: text screenshots stay sharp and a PNG shrinks about threefold


def audit(source: Path, reports: Path, lang: Lang, now: datetime, as_of: date | None = None) -> Path:
    """One replayed audit at a fixed time; its run folder."""
    local = source / "local" if (source / "local").is_dir() else None
    result = asyncio.run(run_audit(AuditOptions(reports=reports, replay=source, local=local, now=now, as_of=as_of,
                                                lang=lang, concurrency=1)))
    return result.run_dir


def history_pages(work: Path) -> tuple[Path, Path]:
    """The history page and the second night's report of HISTORY_PAIR."""
    pair = yaml.safe_load((NIGHTS / HISTORY_PAIR / "pair.yaml").read_text(encoding="utf-8"))
    run = work
    for night in ("night1", "night2"):
        when = pair[night]
        as_of = when.get("as_of")
        run = audit(NIGHTS / HISTORY_PAIR / night, work / "history", "nl",
                    datetime.fromisoformat(str(when["now"]).replace("Z", "+00:00")),
                    date.fromisoformat(str(as_of)) if as_of else None)
    return write_index(run.parent, "nl"), run / "report.html"


def save(png: bytes, target: Path) -> int:
    """Write the PNG with a reduced palette when Pillow is installed (pip install -e '.[screenshots]')."""
    try:
        from PIL import Image
    except ImportError:
        target.write_bytes(png)
        return len(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    target.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (default: docs/screenshots)")
    args = parser.parse_args(argv)
    binary = find_chromium()
    if binary is None:
        print("No Chromium found: apt-get install chromium (or set CHROMIUM=/path/to/chrome).", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="m365audit-screenshots-"))
    try:
        pages = {name: audit(TENANTS / tenant, work / name, lang, NOW) / "report.html"
                 for name, tenant, lang in REPORTS}
        pages["history"], pages["report-drift"] = history_pages(work)
        # (file name, page, element or None for the first screen)
        shots: list[tuple[str, Path, str | None]] = [(n, p, None) for n, p in pages.items() if n != "report-drift"]
        shots += [("drift", pages["report-drift"], "#drift"), ("sources", pages[SOURCES_SHOT], SOURCES_SECTION)]
        total = 0
        with Chromium(binary) as browser:
            for width, height in SCREENS:
                for name, page, selector in shots:
                    browser.load(page, width, height)
                    png = browser.screenshot(max_height=None if selector else height, selector=selector)
                    total += save(png, out / f"{name}-{width}.png")
        print(f"{len(shots) * len(SCREENS)} screenshots in {out} ({total // 1024} KB)")
        if importlib.util.find_spec("PIL") is None:
            print("Pillow is not installed, so the PNGs keep every colour (about three times larger): "
                  "pip install -e '.[screenshots]'", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
