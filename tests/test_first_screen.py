"""The first screen of report.html: unattested manual checks, tonight's news, what blocks a complete audit."""

from __future__ import annotations

import html as htmllib
import re
from datetime import date, datetime
from pathlib import Path

import yaml

from m365audit.evaluate import load_pack
from m365audit.report.firstscreen import shared_rationale
from m365audit.report.hints_nl import graph_error
from tests.conftest import TENANTS
from tests.test_drift import NIGHTS
from tests.test_language import audit_nl


def first_screen(page: str) -> str:
    """Everything above the overview table: the header, the banner, the tiles and the 'to fix' list."""
    return page[:page.index('<h2 id="overview">')]


def test_a_pass_with_unattested_manual_checks_says_so_under_the_headline(tmp_path: Path) -> None:
    result = audit_nl(TENANTS / "gemeente-voorbeeld", tmp_path)
    assert result.verdict == "pass" and result.exit_code == 0, "the verdict and exit code do not change"
    page = (result.run_dir / "report.html").read_text(encoding="utf-8")
    banner = page[page.index('<section class="verdict'):page.index("</section>")]
    manual = [f for f in result.findings if f.status.value == "manual" and f.attestation is None]
    high = [f for f in manual if f.severity.value in ("high", "critical")]
    assert manual and f"Let op: {len(manual)} handmatige controles hebben geen geldige verklaring " \
                      f"({len(high)} met ernst hoog of kritiek)" in htmllib.unescape(banner)
    assert "Let op:" in (result.run_dir / "report.md").read_text(encoding="utf-8")


def test_the_banner_names_what_is_new_tonight(tmp_path: Path) -> None:
    pair = yaml.safe_load((NIGHTS / "new-ai-app-grant" / "pair.yaml").read_text(encoding="utf-8"))
    runs = []
    for night in ("night1", "night2"):
        when = pair[night]
        runs.append(audit_nl(NIGHTS / "new-ai-app-grant" / night, tmp_path,
                             datetime.fromisoformat(str(when["now"]).replace("Z", "+00:00")),
                             date.fromisoformat(str(when["as_of"])) if when.get("as_of") else None))
    first = (runs[0].run_dir / "report.html").read_text(encoding="utf-8")
    assert "Nieuw sinds de vorige controle" not in first, "a first run has nothing new to name"
    page = (runs[1].run_dir / "report.html").read_text(encoding="utf-8")
    banner = htmllib.unescape(page[page.index('<section class="verdict'):page.index("</section>")])
    assert "Nieuw sinds de vorige controle" in banner
    assert re.search(r"<li>nieuw: ChatGPT Enterprise \([^)]+; [^)]+\)</li>", banner), banner
    assert banner.count("nieuw: ChatGPT Enterprise") == 1, "one line per new object, naming every rule it offends"


def test_error_rules_get_a_to_fix_list_and_no_remediation(tmp_path: Path) -> None:
    result = audit_nl(TENANTS / "permissions-missing", tmp_path)
    page = (result.run_dir / "report.html").read_text(encoding="utf-8")
    top = htmllib.unescape(first_screen(page))
    assert "Audit onvolledig: wat nodig is om dit te kunnen controleren" in top
    assert "geef de audit-app de applicatiemachtiging AuditLogsQuery.Read.All" in top
    assert "geen toegang (HTTP 403)" in top and "<q>Insufficient privileges to complete the operation.</q>" in top
    pack = load_pack()
    for f in result.findings:
        rule = pack.rule(f.rule_id)
        assert rule is not None
        article = htmllib.unescape(re.search(rf'<article[^>]* id="{f.rule_id}".*?</article>', page, re.S)[0])
        if f.status.value == "error":
            assert f.rule_id in top
            assert rule.remediation.nl not in article and "Geen herstelactie: er is geen overtreding" in article
        elif f.status.value == "fail":
            assert rule.remediation.nl in article


def test_the_shared_rationale_is_shown_once(tmp_path: Path) -> None:
    shared, own = shared_rationale(load_pack().rules, "nl")
    assert any("DPIA" in s for s in shared) and all(s not in text for s in shared for text in own.values())
    page = htmllib.unescape((audit_nl(TENANTS / "copilot-pilot", tmp_path).run_dir / "report.html")
                            .read_text(encoding="utf-8"))
    for sentence in shared:
        assert page.count(sentence) == 1, sentence
    assert page.count("Zie ook de toelichting bij alle regels.") >= len(own) - 2


def test_graph_errors_are_explained_in_dutch_and_quoted_as_graph_wrote_them() -> None:
    message = "Graph answered 403 Authorization_RequestDenied: Insufficient privileges to complete the operation."
    assert graph_error(message, "nl") == (
        "geen toegang (HTTP 403): de audit-app mist een API-machtiging of een rol; foutcode "
        "Authorization_RequestDenied (onvoldoende rechten)", "Insufficient privileges to complete the operation.")
    assert graph_error(message, "en") == (message, None)
    assert graph_error("Graph answered 418 Teapot: short and stout", "nl") == (
        "Graph antwoordde met HTTP-status 418; foutcode Teapot", "short and stout")
    assert graph_error("something only Graph says", "nl") == ("something only Graph says", None)
