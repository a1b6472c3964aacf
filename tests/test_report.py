"""The reports: HTML that shows hostile names as text, both languages, JUnit structure, Markdown, pseudonyms."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.audit.runner import AuditResult
from m365audit.cli import cli
from m365audit.evaluate import load_pack
from m365audit.models import Finding, FindingObject, Severity, Snapshot, SourceResult, Status, Text
from m365audit.report import Pseudonymiser
from m365audit.report.pseudonymise import KEY_ENV
from m365audit.report.vocabulary import LABELS
from m365audit.report.writer import REPORT_OBJECT_CAP, md_escape, render_html
from tests.conftest import FIXED_NOW, ROOT, TENANTS

DOCS = ROOT / "docs"
EXAMPLE_TENANT = "copilot-pilot"
KEY = b"test-pseudonym-key-0123456789"
REGENERATE = "M365AUDIT_REGENERATE_EXAMPLE"


def audit(name: str, reports: Path, lang: str = "nl", key: bytes | None = None) -> AuditResult:
    tenant = TENANTS / name
    local = tenant / "local" if (tenant / "local").is_dir() else None
    return asyncio.run(run_audit(AuditOptions(reports=reports, replay=tenant, local=local, now=FIXED_NOW,
                                              lang="en" if lang == "en" else "nl", concurrency=1,
                                              pseudonym_key=key)))


class Page(HTMLParser):
    """Every element, attribute and text node of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"a comment reached the page: {data!r}")


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


TEMPLATE_TAGS = {"html", "head", "meta", "title", "style", "body", "a", "header", "p", "h1", "h2", "h3", "h4", "dl",
                 "dt", "dd", "code", "main", "section", "ul", "li", "span", "div", "table", "caption", "thead", "tr",
                 "th", "td", "tbody", "strong", "article", "br", "details", "summary", "footer", "q"}
TEMPLATE_ATTRS = {"lang", "charset", "name", "content", "class", "href", "id", "aria-labelledby", "aria-label", "scope",
                  "colspan", "data-label"}  # data-label: a column header shown before a stacked cell on a phone
HOSTILE_TEXT = ['Gemeente <script>alert("org")</script> & \'Zoet"hout\' {{ 7*7 }} | [x](javascript:alert(1))',
                "BLOCK - <img src=x onerror=alert(1)> {% if true %}{{ config }}{% endif %} - Copilot",
                'WIN - </td></tr></table><h1 onclick="x()">Copilot uit</h1> ${jndi:x} `code` *em*',
                'WIN - Recall <a href="javascript:alert(1)">niet</a> beschikbaar &amp; &lt;b&gt;',
                "EDGE - <style>body{display:none}</style><!-- comment --> Copilot zonder paginainhoud"]


@cache
def hostile_run(lang: str) -> Path:
    import tempfile

    return audit("hostile-names", Path(tempfile.mkdtemp(prefix="m365audit-hostile-")), lang).run_dir


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_hostile_tenant_data_is_shown_as_text_never_as_markup(lang: str) -> None:
    page = parse((hostile_run(lang) / "report.html").read_text(encoding="utf-8"))
    assert {tag for tag, _ in page.tags} <= TEMPLATE_TAGS
    assert [tag for tag, _ in page.tags].count("style") == 1 and ("script" not in {t for t, _ in page.tags})
    for tag, attrs in page.tags:
        for name, value in attrs:
            assert name in TEMPLATE_ATTRS, (tag, name)
            assert not re.search(r"[<>\"'{}]|javascript:|alert|onerror", value or ""), (tag, name, value)
    text = " ".join(" ".join(page.text).split())
    for hostile in HOSTILE_TEXT:
        assert " ".join(hostile.split()) in text, f"not shown as text: {hostile}"
    assert "49" not in re.findall(r"\b\d+\b", " ".join(HOSTILE_TEXT)), "no template ran on tenant data"


def test_hostile_names_in_junit_and_markdown_stay_text() -> None:
    run = hostile_run("nl")
    suite = ET.parse(run / "junit.xml").getroot().find("testsuite")
    assert suite is not None and "<script>" in suite.get("name", "")
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "<script>" not in md and not re.search(r"(?<!\\)\]\(", md) and "\\<script\\>" in md
    assert md.splitlines()[0].count("|") == md.splitlines()[0].count("\\|"), "a name cannot break a table"


def test_the_html_is_self_contained_and_accessible() -> None:
    text = (hostile_run("en") / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script|<link|<img|<iframe|<object|@import|url\(|\ssrc=\"", text, re.IGNORECASE)
    assert re.search(r'<html lang="en">', text) and '<meta name="viewport"' in text
    assert all(f'<th scope="{s}"' in text for s in ("col", "row"))
    levels = [int(h) for h in re.findall(r"<h([1-4])[ >]", text)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), "no heading level skipped"
    assert "@media print" in text and "@media (max-width" in text


def test_every_label_exists_in_both_languages() -> None:
    for key, texts in LABELS.items():
        assert set(texts) == {"nl", "en"} and all(t.strip() for t in texts.values()), key
        assert texts["nl"].count("{") == texts["en"].count("{"), key


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_each_report_speaks_one_language(lang: str, tmp_path: Path) -> None:
    result = audit(EXAMPLE_TENANT, tmp_path, lang)
    text = html.unescape((result.run_dir / "report.html").read_text(encoding="utf-8"))
    other = "en" if lang == "nl" else "nl"
    for f in result.findings:
        assert f.title.get(lang) in text and f.message.get(lang) in text
        if f.message.get(other) != f.message.get(lang):
            assert f.message.get(other) not in text, f.rule_id
    for key in ("verdict_fail", "section_fail", "section_manual", "verify_title", "no_attestation"):
        assert LABELS[key][lang] in text and LABELS[key][other] not in text
    assert f'<html lang="{lang}">' in text


def test_the_html_report_has_what_a_reader_needs(tmp_path: Path) -> None:
    result = audit("pilot-with-waivers", tmp_path, "en")
    page = html.unescape((result.run_dir / "report.html").read_text(encoding="utf-8"))
    assert "Gemeente" in page and "2026-11-28 02:15 UTC" in page and result.snapshot.tenant_id in page
    for f in result.findings:
        if f.waiver is not None:
            assert f.waiver.expires.isoformat() in page and f.waiver.reason.rstrip(".") in page
        if f.attestation is not None:
            assert f.attestation.attested_by in page and f.attestation.expires.isoformat() in page
    doc = json.loads((result.run_dir / "findings.json").read_text())
    evidence = [e for f in doc["findings"] for e in f["evidence"]]
    assert evidence and all((result.run_dir / e["file"]).is_file() for e in evidence)
    linked = set(re.findall(r'href="(exchanges/[^"]+)"', page))
    assert linked and all((result.run_dir / link).is_file() for link in linked)
    assert any(e["request_id"] and e["request_id"] in page for e in evidence)
    errors = audit("permissions-missing", tmp_path / "pm", "en")
    page = html.unescape((errors.run_dir / "report.html").read_text(encoding="utf-8"))
    hints = [e.hint for f in errors.findings for e in f.errors if e.hint]
    assert hints and all(h in page for h in hints)
    assert "INCOMPLETE: not everything could be checked" in page


def test_objects_are_capped_and_the_rest_is_in_findings_json() -> None:
    pack = load_pack()
    rule = pack.rules[0]
    objects = [FindingObject(id=f"id-{n:03d}", name=f"Object {n:03d}") for n in range(REPORT_OBJECT_CAP + 7)]
    finding = Finding(rule_id=rule.id, rule_version=1, status=Status.FAIL, severity=Severity.HIGH,
                      title=rule.title, message=Text(nl="veel", en="many"), objects=objects, sources=rule.sources)
    snapshot = Snapshot(tenant_id="t", collected_at=FIXED_NOW, tool_version="0",
                        sources={"organization": SourceResult(key="organization", ok=True, url="/")})
    page = render_html(snapshot, [finding], pack, "20261128T021500Z", "en", {}, FIXED_NOW)
    assert f"Object {REPORT_OBJECT_CAP - 1:03d}" in page and f"Object {REPORT_OBJECT_CAP:03d}" not in page
    assert "And 7 more; findings.json has the full list." in page


# --------------------------------------------------------------------------- findings.json and report.md


def test_findings_json_keeps_the_architecture_contract(tmp_path: Path) -> None:
    result = audit(EXAMPLE_TENANT, tmp_path, "en")
    doc = json.loads((result.run_dir / "findings.json").read_text())
    assert doc["tenant_id"] == result.snapshot.tenant_id and doc["run_id"] == result.run_dir.name
    assert len(doc["findings"]) == len(result.findings)
    for f in doc["findings"]:
        assert {"rule_id", "status", "severity", "title", "message", "objects", "sources"} <= set(f)
        assert isinstance(f["title"], str) and isinstance(f["message"], str)
        assert all({"id", "name", "detail"} <= set(o) for o in f["objects"])
        assert set(f["i18n"]["message"]) == {"nl", "en"}


def test_report_md_is_short_and_names_every_rule_that_needs_attention(tmp_path: Path) -> None:
    result = audit(EXAMPLE_TENANT, tmp_path, "en")
    md = (result.run_dir / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# Generative AI audit: Gemeente Proefstad\n")
    assert "**NOT COMPLIANT: the council decision is broken**" in md
    for f in result.findings:
        assert (f"`{f.rule_id}`" in md) == (f.status is not Status.PASS)
    # short: one table line per rule that needs attention, plus a fixed head and foot (the pack grows)
    assert len(md.splitlines()) < len(result.findings) + 24 and len(md) < 12_000


def test_md_escape_makes_any_text_literal() -> None:
    assert md_escape("a|b [x](y) <i>*z*</i> `c` & d\ne") == "a\\|b \\[x\\](y) \\<i\\>\\*z\\*\\</i\\> \\`c\\` \\& d e"


# --------------------------------------------------------------------------- junit.xml


JUNIT_CHILDREN = {"testsuites": {"testsuite"}, "testsuite": {"properties", "testcase", "system-out", "system-err"},
                  "properties": {"property"}, "testcase": {"skipped", "error", "failure", "system-out", "system-err"}}
JUNIT_ATTRS = {  # (required, optional) after the Jenkins junit-10.xsd and Ant's junit schema (Windy Road JUnit.xsd)
    "testsuites": (set(), {"name", "time", "tests", "failures", "disabled", "errors", "skipped"}),
    "testsuite": ({"name", "tests", "failures", "errors", "time", "timestamp", "hostname", "id", "package"},
                  {"disabled", "skipped", "file", "log", "url", "version", "group"}),
    "property": ({"name", "value"}, set()),
    "testcase": ({"name", "classname", "time"}, {"assertions", "status", "class", "file", "line", "log", "group",
                                                 "url"}),
    "failure": ({"message", "type"}, set()), "error": ({"message", "type"}, set()), "skipped": (set(), {"message"}),
    "properties": (set(), set()), "system-out": (set(), set()), "system-err": (set(), set()),
}
SUITE_ORDER = ["properties", "testcase", "system-out", "system-err"]


def check_junit(root: ET.Element) -> list[str]:
    """The structure junit-10.xsd and Ant's JUnit.xsd require, checked by hand (stdlib has no XSD validator)."""
    problems: list[str] = []
    if root.tag != "testsuites":
        return [f"root is {root.tag}"]
    for element in root.iter():
        required, optional = JUNIT_ATTRS.get(element.tag, (None, None))
        if required is None or optional is None:
            problems.append(f"unknown element {element.tag}")
            continue
        problems += [f"{element.tag} lacks @{a}" for a in sorted(required - set(element.attrib))]
        problems += [f"{element.tag} has unknown @{a}" for a in sorted(set(element.attrib) - required - optional)]
        allowed = JUNIT_CHILDREN.get(element.tag, set())
        problems += [f"{element.tag} holds {c.tag}" for c in element if c.tag not in allowed]
        for attr in ("tests", "failures", "errors", "skipped", "disabled"):
            if attr in element.attrib and not element.attrib[attr].isdigit():
                problems.append(f"{element.tag}@{attr} is not a count")
        if "time" in element.attrib and not re.fullmatch(r"\d+(\.\d+)?", element.attrib["time"]):
            problems.append(f"{element.tag}@time is not a decimal")
    for suite in root.findall("testsuite"):
        order = [SUITE_ORDER.index(c.tag) for c in suite if c.tag in SUITE_ORDER]
        if order != sorted(order) or [c.tag for c in suite].count("properties") > 1:
            problems.append("testsuite children out of order (properties, testcase*, system-out, system-err)")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp", "")):
            problems.append("testsuite@timestamp is not ISO 8601 without a time zone")
        cases = suite.findall("testcase")
        for attr, child in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            if int(suite.get(attr, "0")) != sum(1 for c in cases if c.find(child) is not None):
                problems.append(f"testsuite@{attr} does not count its {child} elements")
        if int(suite.get("tests", "-1")) != len(cases):
            problems.append("testsuite@tests does not count its test cases")
        problems += [f"{c.get('name')} has more than one outcome" for c in cases
                     if len([x for x in c if x.tag in ("failure", "error", "skipped")]) > 1]
    for attr in ("tests", "failures", "errors", "skipped"):
        if attr in root.attrib and int(root.attrib[attr]) != sum(int(s.get(attr, "0")) for s in root):
            problems.append(f"testsuites@{attr} is not the sum of its suites")
    return problems


@pytest.mark.parametrize("name", ["copilot-pilot", "permissions-missing", "pilot-with-waivers", "hostile-names"])
def test_junit_has_the_schema_structure_and_one_case_per_rule(name: str, tmp_path: Path) -> None:
    result = audit(name, tmp_path, "en")
    root = ET.parse(result.run_dir / "junit.xml").getroot()
    assert check_junit(root) == []
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {f.rule_id for f in result.findings}
    for f in result.findings:
        outcome = [c.tag for c in cases[f.rule_id]]
        assert outcome == {"fail": ["failure"], "error": ["error"], "waived": ["skipped"], "manual": ["skipped"],
                           "pass": []}[f.status.value], f.rule_id
        if f.status is Status.WAIVED and f.waiver is not None:
            skipped = cases[f.rule_id].find("skipped")
            assert skipped is not None and f.waiver.expires.isoformat() in skipped.get("message", "")


def test_the_junit_check_catches_broken_structure() -> None:
    broken = ET.fromstring('<testsuites><testsuite name="x" tests="2" failures="0" errors="0" time="0" '
                           'timestamp="2026-11-28T02:15:00Z" hostname="h" id="1" package="p">'
                           '<testcase name="a" classname="c" time="0"><failure type="t"/><skipped/></testcase>'
                           '<properties/></testsuite></testsuites>')
    problems = check_junit(broken)
    assert "failure lacks @message" in problems and "testsuite@tests does not count its test cases" in problems
    assert "a has more than one outcome" in problems and "testsuite@failures does not count its failure elements" \
        in problems
    assert any("out of order" in p for p in problems) and any("timestamp" in p for p in problems)


# --------------------------------------------------------------------------- pseudonyms


def people(tenant: Path) -> tuple[set[str], set[str]]:
    """The names and addresses of the fixture's users (users source and usage report)."""
    names, addresses = set(), set()
    for path in (tenant / "exchanges").glob("*users*.json"):
        for user in json.loads(path.read_text()).get("response", {}).get("body", {}).get("value", []):
            names.add(user["displayName"])
            addresses.update(a for a in [user.get("userPrincipalName"), user.get("mail"), *user.get("otherMails", [])]
                             if a)
    return names, {a.lower() for a in addresses}


REPORTS = ("report.html", "report.md", "junit.xml", "findings.json")


def report_text(run: Path) -> str:
    return "\n".join(html.unescape((run / name).read_text(encoding="utf-8")) for name in REPORTS)


@pytest.mark.parametrize("name", ["copilot-pilot", "pilot-with-waivers"])
def test_pseudonymised_reports_hold_no_user_names_or_addresses(name: str, tmp_path: Path) -> None:
    names, addresses = people(TENANTS / name)
    assert len(names) > 10 and len(addresses) > 10
    plain = audit(name, tmp_path / "plain", "en")
    shown = report_text(plain.run_dir)
    assert any(n in shown for n in names) or any(a in shown.lower() for a in addresses), "it does name people"
    run = audit(name, tmp_path / "pseudo", "en", KEY).run_dir
    text = report_text(run)
    assert [n for n in names if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)] == []
    assert [a for a in addresses if a in text.lower()] == []
    assert not re.search(r"[\w.+-]+@(?!pseudonym)[\w-]+\.[\w.]+", text.replace("@media", "").replace("@page", ""))
    assert "user-" in text and json.loads((run / "findings.json").read_text())["pseudonymised"] is True
    evidence = (run / "snapshot.json").read_text(encoding="utf-8")
    assert all(n in evidence for n in names), "the evidence keeps the real names"
    assert json.loads((run / "manifest.json").read_text())["reports_pseudonymised"] is True


def test_the_same_key_gives_the_same_pseudonyms_and_another_key_others(tmp_path: Path) -> None:
    def objects(key: bytes, folder: str) -> list[Any]:
        doc = json.loads((audit(EXAMPLE_TENANT, tmp_path / folder, "en", key).run_dir / "findings.json").read_text())
        return [o for f in doc["findings"] for o in f["objects"]]

    first, second = objects(KEY, "a"), objects(KEY, "b")
    other = objects(b"another-key-0123456789abcdef", "c")
    assert first == second and first != other
    same = Pseudonymiser(KEY).pseudonym("J.Jansen@Voorbeeld.nl")
    assert same == Pseudonymiser(KEY).pseudonym("j.jansen@voorbeeld.nl")
    assert re.fullmatch(r"user-[0-9a-f]{12}", Pseudonymiser(KEY).pseudonym("x"))


def test_pseudonymise_without_a_key_is_refused_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    result = CliRunner().invoke(cli, ["audit", "--replay", str(TENANTS / "gemeente-voorbeeld"), "--reports",
                                      str(tmp_path), "--pseudonymise"])
    assert result.exit_code == 2 and "Error: --pseudonymise needs a key, and none was given" in result.output
    assert f"Hint: set {KEY_ENV}" in result.output and not tmp_path.exists() or not any(tmp_path.rglob("*.json"))
    monkeypatch.setenv(KEY_ENV, "short")
    result = CliRunner().invoke(cli, ["audit", "--replay", str(TENANTS / "gemeente-voorbeeld"), "--reports",
                                      str(tmp_path), "--pseudonymise"])
    assert result.exit_code == 2 and "too short" in result.output


def test_evaluate_writes_pseudonymised_reports_from_a_stored_run(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run = audit(EXAMPLE_TENANT, tmp_path / "reports", "en").run_dir
    names, addresses = people(TENANTS / EXAMPLE_TENANT)
    key_file = tmp_path / "key"
    key_file.write_text("a-key-the-admin-keeps-0123456789\n")
    out = tmp_path / "shared"
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--as-of", "2026-11-28", "--output", str(out),
                                      "--pseudonym-key-file", str(key_file), "--lang", "en"])
    assert result.exit_code == 1, result.output
    text = report_text(out)
    assert [n for n in names if n in text] == [] and [a for a in addresses if a in text.lower()] == []
    assert not any(n in result.output for n in names)
    again = CliRunner().invoke(cli, ["evaluate", str(run), "--output", str(out), "--pseudonym-key-file",
                                     str(key_file)])
    assert again.exit_code == 4 and "is not empty" in again.output
    as_json = CliRunner().invoke(cli, ["evaluate", str(run), "--json", "--pseudonym-key-file", str(key_file)])
    assert json.loads(as_json.output)["pseudonymised"] is True and not any(a in as_json.output for a in addresses)


# --------------------------------------------------------------------------- the example report


def example(tmp_path: Path) -> dict[str, str]:
    """docs/example-report.html and .md, regenerated from the fixture with the fixed time of the test suite."""
    run = audit(EXAMPLE_TENANT, tmp_path, "en").run_dir
    return {name: (run / f"report.{name.split('.')[-1]}").read_text(encoding="utf-8")
            for name in ("example-report.html", "example-report.md")}


def without_pack_digest(text: str) -> str:
    """The page with the policy-pack digest masked: a catalog edit alone does not make the example stale."""
    return re.sub(r"(Policy pack \(sha256\)</dt><dd><code>)[0-9a-f]+", r"\1…", text)


def test_the_example_report_in_docs_is_current(tmp_path: Path) -> None:
    fresh = example(tmp_path)
    if os.environ.get(REGENERATE):
        for name, text in fresh.items():
            (DOCS / name).write_text(text, encoding="utf-8")
    for name, text in fresh.items():
        assert without_pack_digest((DOCS / name).read_text(encoding="utf-8")) == without_pack_digest(text), \
            f"docs/{name} is out of date: {REGENERATE}=1 python -m pytest tests/test_report.py -k example"
        assert str(tmp_path) not in text and str(ROOT) not in text and "/tmp" not in text
    again = example(tmp_path / "again")
    assert again == fresh, "generation is deterministic"
    assert datetime(2026, 11, 28, 2, 15, tzinfo=timezone.utc) == FIXED_NOW and "20261128T021500Z" in fresh[
        "example-report.html"]
    assert "docs/example-report.html" in (ROOT / "README.md").read_text(encoding="utf-8")
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_pseudonymiser_finds_people_in_every_source_and_only_whole_names() -> None:
    users = [{"id": "1", "userPrincipalName": "p.devries@voorbeeld.nl", "displayName": "Petra de Vries",
              "mail": "petra@voorbeeld.nl", "proxyAddresses": ["SMTP:petra.vries@voorbeeld.nl"]}]
    usage = [{"User Principal Name": "k.bos@voorbeeld.nl", "Display Name": "Kees Bos"}]
    roles = [{"principalType": "User", "principalDisplayName": "Anna Smit"},
             {"principalType": "ServicePrincipal", "principalDisplayName": "Zaakwijs Zaaksysteem"}]
    sources = {key: SourceResult(key=key, ok=True, url="/", data=data)
               for key, data in (("users", users), ("copilot_usage", usage), ("app_role_assignments", roles))}
    p = Pseudonymiser(KEY, Snapshot(tenant_id="t", collected_at=FIXED_NOW, tool_version="0", sources=sources))
    text = p.text("Petra de Vries (PETRA@voorbeeld.nl, petra.vries@voorbeeld.nl) and Kees Bos; approved by "
                  "ciso@voorbeeld.nl; Anna Smit; Zaakwijs Zaaksysteem; Petra de Vriesland")
    petra = p.pseudonym("p.devries@voorbeeld.nl")
    assert text == (f"{petra} ({petra}, {petra}) and {p.pseudonym('k.bos@voorbeeld.nl')}; approved by "
                    f"{p.pseudonym('ciso@voorbeeld.nl')}; {p.pseudonym('Anna Smit')}; Zaakwijs Zaaksysteem; "
                    "Petra de Vriesland")


def test_names_that_share_a_first_word_are_found_longest_first() -> None:
    users = [{"id": str(n), "userPrincipalName": f"m{n}@voorbeeld.nl", "displayName": f"Medewerker {n}"}
             for n in range(1, 2001)]
    users += [{"id": "x", "userPrincipalName": "jan.vb@voorbeeld.nl", "displayName": "Jan de Vries-Bakker"},
              {"id": "y", "userPrincipalName": "jan.v@voorbeeld.nl", "displayName": "Jan de Vries"}]
    p = Pseudonymiser(KEY, Snapshot(tenant_id="t", collected_at=FIXED_NOW, tool_version="0", sources={
        "users": SourceResult(key="users", ok=True, url="/", data=users)}))
    text = p.text("Medewerker 12, Medewerker 1999 en Medewerker 2001; Jan de Vries-Bakker; Jan de Vries.")
    assert text == (f"{p.pseudonym('m12@voorbeeld.nl')}, {p.pseudonym('m1999@voorbeeld.nl')} en Medewerker 2001; "
                    f"{p.pseudonym('jan.vb@voorbeeld.nl')}; {p.pseudonym('jan.v@voorbeeld.nl')}.")
