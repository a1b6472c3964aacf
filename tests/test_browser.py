"""The HTML reports and history page in headless Chromium at 1366 and 390 px: nothing wider than the screen."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, TENANTS
from tools.chromium import Chromium, find_chromium

WIDTHS = (1366, 390)
NIGHTS = ROOT / "fixtures" / "nights"
# (fixture tenant, language): the example, the one whose sources answer 403, and the one with hostile strings.
REPORTS = [("copilot-pilot", "nl"), ("copilot-pilot", "en"), ("permissions-missing", "nl"),
           ("permissions-missing", "en"), ("hostile-names", "nl"), ("hostile-names", "en"),
           ("gemeente-voorbeeld", "nl"), ("edge-cases", "en")]
# Two nights of one tenant: the second report has a drift section and the history page has a trend of two runs.
HISTORY_PAIRS = [("new-ai-app-grant", "nl"), ("source-errors", "en")]

VERDICT_EXITS = (0, 1, 3)  # compliant, not compliant, incomplete: each writes a report

CHROMIUM = find_chromium()
REQUIRED = bool(os.environ.get("M365AUDIT_REQUIRE_CHROMIUM"))  # .ci/run sets it: CI must not skip this module
pytestmark = pytest.mark.skipif(CHROMIUM is None and not REQUIRED,
                                reason="Chromium is not installed (Debian: apt-get install chromium)")

# Every <details> is opened first: a closed one hides text that must fit too once the reader opens it.
# Problems: the page scrolls sideways; an element's content is wider than its box (a scroll container that
# has to scroll counts: a table column behind a scrollbar is as unreadable as one off the page); an element
# reaches past the viewport; a row key (a source name) broken over lines. Skipped: elements not rendered, and the
# off-screen skip link (absolute, left of 0).
LAYOUT_PROBLEMS = r"""
(() => {
  for (const d of document.querySelectorAll('details')) d.open = true;
  const vw = document.documentElement.clientWidth;
  const problems = [];
  const name = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    if (typeof el.className === 'string' && el.className.trim()) s += '.' + el.className.trim().split(/\s+/).join('.');
    const owner = el.parentElement && el.parentElement.closest('[id]');
    const text = (el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 70);
    return (owner ? '#' + owner.id + ' > ' : '') + s + ' "' + text + '"';
  };
  const reported = [];  // an element that is reported hides its descendants' problems (they are the same one)
  const report = (el, text) => { reported.push(el); problems.push(text + name(el)); };
  const root = document.documentElement;
  if (root.scrollWidth > vw) problems.push('page scrolls sideways: ' + root.scrollWidth + ' > ' + vw + ' px');
  for (const el of document.body.querySelectorAll('*')) {
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (cs.position === 'absolute' && r.right <= 0) continue;
    if (cs.position === 'absolute' && r.width <= 1 && r.height <= 1) continue;  // screen-reader-only text (.sr)
    if (reported.some((p) => p.contains(el))) continue;
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
      const scrolls = cs.overflowX === 'auto' || cs.overflowX === 'scroll';
      report(el, (scrolls ? 'scrolls sideways ' : 'content wider than its box ') + el.scrollWidth + ' > ' +
                 el.clientWidth + ' px: ');
    } else if (r.right > vw + 1 || r.left < -1) {
      report(el, 'beyond the viewport (' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + vw + ' px): ');
    }
  }
  // a source key squeezed onto several lines by a long error beside it (it once broke every five characters)
  for (const el of document.querySelectorAll('th[scope="row"] > code')) {
    if (el.getClientRects().length > 1) report(el, 'key broken over lines: ');
  }
  return problems;
})()
"""


def run_all(commands: list[list[str]]) -> None:
    """Run m365audit commands side by side; each must end with a verdict (a report is written either way)."""
    procs = [subprocess.Popen([sys.executable, "-m", "m365audit", *args], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for args in commands]
    outputs = [proc.communicate(timeout=180)[0] for proc in procs]
    for args, proc, output in zip(commands, procs, outputs, strict=True):
        assert proc.returncode in VERDICT_EXITS, f"m365audit {' '.join(args)}:\n{output}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    if CHROMIUM is None:
        pytest.fail("M365AUDIT_REQUIRE_CHROMIUM is set but no Chromium is installed (apt-get install chromium)")
    with Chromium(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every page under test by a readable name: report.html of each REPORTS entry, and per pair its second
    night's report (with drift) and the tenant's history page. Through the CLI, in three parallel waves."""
    base = tmp_path_factory.mktemp("browser")

    def audit(source: Path, out: Path, lang: str) -> list[str]:
        return ["audit", "-q", "--replay", str(source), "--reports", str(out), "--lang", lang]

    run_all([audit(TENANTS / t, base / f"{t}-{lang}", lang) for t, lang in REPORTS] +
            [audit(NIGHTS / p / "night1", base / f"history-{p}", lang) for p, lang in HISTORY_PAIRS])
    run_all([audit(NIGHTS / p / "night2", base / f"history-{p}", lang) for p, lang in HISTORY_PAIRS])
    run_all([["history", "--html", "--reports", str(base / f"history-{p}"), "--lang", lang]
             for p, lang in HISTORY_PAIRS])
    found: dict[str, Path] = {}
    for t, lang in REPORTS:
        (found[f"{t}-{lang}"],) = (base / f"{t}-{lang}").glob("*/*/report.html")
    for p, _ in HISTORY_PAIRS:
        (found[f"history-{p}"],) = (base / f"history-{p}").glob("*/index.html")
        first, second = sorted((base / f"history-{p}").glob("*/*/report.html"))
        found[f"drift-{p}"] = second
    return found


PAGES = [f"{t}-{lang}" for t, lang in REPORTS] + [f"{kind}-{p}" for p, _ in HISTORY_PAIRS for kind in ("drift",
                                                                                                       "history")]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_the_page_fits_the_screen(browser: Chromium, pages: dict[str, Path], page: str, width: int) -> None:
    browser.load(pages[page], width)
    assert browser.evaluate("document.documentElement.clientWidth") <= width  # the viewport really is this wide
    problems = browser.evaluate(LAYOUT_PROBLEMS)
    assert problems == [], f"{page} at {width} px:\n" + "\n".join(problems[:25])


def test_the_check_sees_an_overflowing_page(browser: Chromium, tmp_path: Path) -> None:
    """The layout check itself: a long unbreakable word, a nowrap cell and a wide SVG are each reported."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">'
                    '</head><body style="margin:0"><div id="a" style="width:200px">' + "x" * 300 + '</div>'
                    '<table><tr><td id="b" style="white-space:nowrap;max-width:100px;overflow:hidden">' +
                    "word " * 80 + '</td></tr></table><svg id="c" width="900" height="10"></svg></body></html>',
                    encoding="utf-8")
    browser.load(page, 390)
    problems = "\n".join(browser.evaluate(LAYOUT_PROBLEMS))
    assert "page scrolls sideways" in problems
    assert "content wider than its box" in problems and "div#a" in problems
    assert "td#b" in problems and "svg#c" in problems
    browser.load(page, 1366)
    assert "div#a" in "\n".join(browser.evaluate(LAYOUT_PROBLEMS))
