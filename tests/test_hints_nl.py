"""A Dutch report gives our hints in Dutch; Graph's own words and unknown texts stay as written."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from m365audit.audit import AuditOptions, run_audit
from m365audit.collect import SOURCES, permission_hint
from m365audit.graph import ReplayTransport
from m365audit.graph.client import _hint_for_status
from m365audit.report.hints_nl import dutch, in_lang
from tests.conftest import FIXED_NOW, ROOT, TENANTS, real_transport

HINT_LITERAL = re.compile(r'hint="([^"{}]+)"')


@pytest.mark.parametrize(("status", "code"), [
    (401, None), (403, None), (403, "Forbidden"), (404, None), (429, None),
    (599, "NotRecorded"), (500, None), (503, None), (418, None)])
def test_every_status_hint_has_dutch(status: int, code: str | None) -> None:
    english = _hint_for_status(status, code)
    assert dutch(english) != english and dutch(english)


@pytest.mark.parametrize("key", sorted(SOURCES))
def test_every_permission_hint_has_dutch_naming_the_permission(key: str) -> None:
    text = dutch(permission_hint(key))
    assert text.startswith("geef de audit-app de applicatiemachtiging ")
    assert all(p in text for p in SOURCES[key].permissions) and " or " not in text


def _source_error_code(module: str) -> str:
    """The code whose hints can end up in a source's error (graph.py: from translate_error to the session's end;
    its sign-in hints go to the terminal, not into reports)."""
    text = (ROOT / "m365audit" / f"{module}.py").read_text(encoding="utf-8")
    if module == "graph/client":
        text = text[text.index("def translate_error"):text.index("def _check_root")]
    return text


@pytest.mark.parametrize("module", ["graph/client", "collect/sources", "collect/collector", "evaluate/engine"])
def test_every_fixed_hint_that_reaches_a_report_has_dutch(module: str) -> None:
    found = HINT_LITERAL.findall(_source_error_code(module))
    assert found or module == "evaluate/engine"
    assert [h for h in found if dutch(h) == h] == []


def test_graph_words_and_english_reports_are_left_alone() -> None:
    graph_says = "Graph answered 403 Authorization_RequestDenied: Insufficient privileges to complete the operation."
    assert dutch(graph_says) == graph_says and dutch(None) == "" and dutch("") == ""
    assert in_lang("run the audit again", "en") == "run the audit again"
    assert in_lang("run the audit again", "nl") == "draai de audit opnieuw"
    assert dutch("fix users, subscribed_skus first") == "los eerst users, subscribed_skus op"


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_report_shows_hints_in_its_language(lang: str, tmp_path: Path,
                                                serve_recording: Callable[[Path], ReplayTransport]) -> None:
    tenant = TENANTS / "permissions-missing"
    serve_recording(tenant)
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant, now=FIXED_NOW, lang=lang,
                                                transport=real_transport())))
    html = (result.run_dir / "report.html").read_text(encoding="utf-8")
    md = (result.run_dir / "report.md").read_text(encoding="utf-8")
    dutch_hint, english_hint = "geef de audit-app de applicatiemachtiging", "grant the application permission"
    if lang == "nl":
        assert dutch_hint in html and english_hint not in html and "draai later opnieuw" in html
        assert english_hint not in md
    else:
        assert english_hint in html and dutch_hint not in html
    snapshot = (result.run_dir / "snapshot.json").read_text(encoding="utf-8")
    assert english_hint in snapshot and dutch_hint not in snapshot  # the evidence keeps what was written
