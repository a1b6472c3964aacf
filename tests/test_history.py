"""History: runs listed with verdict counts, and reports/<tenant>/index.html with an inline SVG trend."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from m365audit.cli import cli
from m365audit.drift import tenant_history
from m365audit.drift.history import chart
from m365audit.evidence import verify_chain
from tests.test_drift import NIGHTS, run_night

PAIR = NIGHTS / "ca-report-only"


def three_nights(reports: Path) -> list[Path]:
    """pass, fail (policy switched to report-only), pass again (switched back)."""
    when = yaml.safe_load((PAIR / "pair.yaml").read_text(encoding="utf-8"))
    runs = [run_night(PAIR / "night1", reports, when["night1"]).run_dir,
            run_night(PAIR / "night2", reports, when["night2"]).run_dir,
            run_night(PAIR / "night1", reports, {"now": "2026-11-30T02:15:00Z"}).run_dir]
    return runs


def test_history_lists_runs_with_counts_and_regressions(tmp_path: Path) -> None:
    runs = three_nights(tmp_path)
    history = tenant_history(runs[0].parent)
    assert [h.run_id for h in history] == [r.name for r in runs]
    assert [h.verdict for h in history] == ["pass", "fail", "pass"]
    assert [h.counts["fail"] for h in history] == [0, 1, 0]
    assert [h.regressions for h in history] == [None, 1, 0]
    result = CliRunner().invoke(cli, ["history", "--reports", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == runs[0].parent.name + "  Gemeente Voorbeeld"
    assert lines[1].split() == ["controle", "oordeel", "voldoet", "niet", "niet", "te", "beoordelen", "uitzondering",
                                "handmatig", "voldoet", "verslechterd"], "a header (in Dutch by default)"
    cells = lines[3].split()
    assert cells[:3] == [runs[1].name, "fail", "1"] and cells[-1] == "1" and len(cells) == 8
    assert lines[2].split()[-1] == "-" and lines[4].split()[-1] == "0"
    english = CliRunner().invoke(cli, ["history", "--reports", str(tmp_path), "--lang", "en"]).output.splitlines()
    assert english[1].split() == ["run", "verdict", "fail", "error", "waived", "manual", "pass", "regressions"]
    by_name = CliRunner().invoke(cli, ["history", "Gemeente Voorbeeld", "--reports", str(tmp_path)])
    assert by_name.output == result.output
    unknown = CliRunner().invoke(cli, ["history", "gemeente-elders", "--reports", str(tmp_path)])
    assert unknown.exit_code == 2 and "no runs for tenant" in unknown.output


def test_index_is_rewritten_after_each_run_and_is_not_evidence(tmp_path: Path) -> None:
    runs = three_nights(tmp_path)
    index = runs[0].parent / "index.html"
    html = index.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<svg" in html and html.count("<polyline") == 2
    for run in runs:
        assert f'href="{run.name}/report.html"' in html
    fail_line = re.search(r'<polyline fill="none" stroke="#a4161a"[^>]* points="([^"]+)"', html)
    assert fail_line is not None
    ys = [float(p.split(",")[1]) for p in fail_line.group(1).split()]
    assert ys[1] < ys[0] == ys[2], "the failing night is higher on the chart"
    for run in runs:
        assert "index.html" not in json.loads((run / "manifest.json").read_text())["files"]
    assert all(r.ok for r in verify_chain(runs[0].parent)), "index.html next to the runs breaks no chain"


def test_chart_scales_to_the_worst_night() -> None:
    from m365audit.drift.history import RunSummary

    def night(run_id: str, fail: int, error: int) -> RunSummary:
        return RunSummary(run_id=run_id, verdict="fail", counts={"pass": 0, "fail": fail, "error": error,
                                                                 "waived": 0, "manual": 0})

    c = chart([night("20261127T021500Z", 4, 0), night("20261128T021500Z", 2, 1)])
    assert c["top"] == 4
    fail_pts = [tuple(map(float, p.split(","))) for p in c["series"]["fail"]["points"].split()]
    assert fail_pts[0][1] == c["top_y"] and fail_pts[0][0] < fail_pts[1][0]


def test_the_history_page_shows_dates_a_rules_by_nights_grid_and_fits_a_phone(tmp_path: Path) -> None:
    from m365audit.drift import write_index

    runs = three_nights(tmp_path)
    html = write_index(runs[0].parent, "nl").read_text(encoding="utf-8")
    assert "30 november 2026 02:15" in html and ">30-11</a>" in html, "dates, not only run ids"
    svg = re.search(r"<svg[^>]*>", html)
    assert svg is not None and " width=" not in svg.group(0), "the chart scales to the screen (viewBox only)"
    assert ">28-11</text>" in html or ">27-11</text>" in html, "the chart's axis has dates"
    grid = html[html.index('<table class="grid">'):]
    grid = grid[:grid.index("</table>")]
    row = re.search(r'<tr><th scope="row" class="rule"><code>ca-blocks-copilot-apps</code>.*?</tr>', grid)
    assert row is not None
    cells = re.findall(r'<td class="c-(\w+)"', row.group(0))
    assert cells == ["pass", "fail", "pass"], "per rule, per night, oldest left"
    assert ">voldoet niet<" in html and ">niet in orde<" in html and ">in orde<" in html
    assert not re.search(r">(pass|fail|error)<", html), "statuses in Dutch"
    english = write_index(runs[0].parent, "en").read_text(encoding="utf-8")
    assert ">not compliant<" in english and "30 November 2026 02:15" in english


def test_history_all_writes_one_overview_of_every_tenant(tmp_path: Path) -> None:
    import shutil
    from datetime import datetime, timezone

    from m365audit.drift import write_overview
    from tests.test_drift import run_night

    runs = three_nights(tmp_path)
    when = yaml.safe_load((NIGHTS / "new-ai-app-grant" / "pair.yaml").read_text(encoding="utf-8"))
    other = [run_night(NIGHTS / "new-ai-app-grant" / n, tmp_path / "other", when[n]).run_dir
             for n in ("night1", "night2")]
    shutil.copytree(other[0].parent, tmp_path / "tenant-b")  # a second tenant, as a shared ICT service has them
    page = write_overview(tmp_path, "nl", datetime(2026, 12, 5, 2, 15, tzinfo=timezone.utc)).read_text(
        encoding="utf-8")
    assert f'href="{runs[0].parent.name}/index.html"' in page and 'href="tenant-b/index.html"' in page
    assert f'href="tenant-b/{other[1].name}/report.html#drift"' in page, "open regressions link to the drift"
    assert "niet in orde" in page and "in orde" in page
    assert "5 dagen: te oud" in page or "dagen: te oud: de nachtelijke controle is niet gedraaid" in page
    assert page.index("tenant-b") < page.index(runs[0].parent.name), "the worst tenant first"
    result = CliRunner().invoke(cli, ["history", "--all", "--reports", str(tmp_path)])
    assert result.exit_code == 0 and result.output.startswith("Overzicht: ")
    assert (tmp_path / "index.html").is_file() and (tmp_path / "tenant-b" / "index.html").is_file()
    refused = CliRunner().invoke(cli, ["history", "tenant-b", "--all", "--reports", str(tmp_path)])
    assert refused.exit_code == 2
