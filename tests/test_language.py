"""Every word a user sees exists in Dutch: label tables have both languages, and nl output has no English left.

Exempt are only tenant strings and Graph's own words (evidence): every string in the snapshot, the objects of
the findings, Graph's quoted error text (<q>); and names that are not sentences: identifiers in <code>, rule ids,
permission names (User.Read.All), command lines in backticks, the titles of cited documents (the rules'
references) and Microsoft's names of settings, which the policy pack quotes in 'single quotes'.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.audit.runner import AuditResult
from m365audit.cli import cli
from m365audit.cli.audit_cmds import CLI_WORDS
from m365audit.collect.sources import SOURCES
from m365audit.drift import write_overview
from m365audit.drift.history import LABELS as HISTORY_LABELS
from m365audit.drift.overview import LABELS as OVERVIEW_LABELS
from m365audit.drift.text import LABELS as DRIFT_LABELS
from m365audit.evaluate import load_pack
from m365audit.report.exports import CSV_COLUMNS
from m365audit.report.hints_nl import graph_error
from m365audit.report.vocabulary import LABELS, PLURALS, VERDICT_WORDS
from tests.conftest import FIXED_NOW, TENANTS
from tests.test_drift import NIGHTS

ENGLISH = re.compile(r"\b(the|and|with|could|must|rules?|errors?|fail(?:s|ed|ing)?|pass(?:es|ed|ing)?|waived?|"
                     r"manual|evidence|sources?|remediation|rationale|hint|verdict|regressions?|REGRESSION|"
                     r"COMPLIANT|INCOMPLETE|Why|How|changes?|previous|runs?|Skip|Overview|Total|Severity|found|"
                     r"none|more|see|medium|high|critical|Generated|Made by|Key|Attestation|Waiver|Read|Requests|"
                     r"new|worse|since|object\(s\)|not read|folder|"
                     # words of the phrases checks write into object details (hints_nl.DETAIL_NL must know them)
                     r"by|on|for|to|not|whether|users?|devices|created|held|consumed|window|review|classified|"
                     r"reaches|licen[cs]es|delegated|application|role|parent|approved|messages|files|assigned|"
                     r"last|sign-in|themselves|may|owner)\b")
PROPER_NAMES = {"Microsoft Products and Services DPA", "Microsoft MCP Server for Enterprise", "Click to Do"}
"""Names of things (a contract, a product) that stay as their owner wrote them."""
SAME_IN_BOTH = {"Tenant", "Status", "status", "Id", "Detail", "DPIA"}
"""Labels that are the same word in Dutch and English (checked against this list, so no label is forgotten)."""


def audit_nl(folder: Path, reports: Path, now: datetime = FIXED_NOW, as_of: date | None = None) -> AuditResult:
    local = folder / "local" if (folder / "local").is_dir() else None
    return asyncio.run(run_audit(AuditOptions(reports=reports, replay=folder, local=local, now=now, as_of=as_of,
                                              lang="nl", concurrency=1)))


def tenant_strings(run: Path) -> set[str]:
    """Every string the tenant or Graph wrote: the snapshot's data and errors, and the findings' objects."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for line in (run / "snapshot.json").read_text(encoding="utf-8").splitlines():
        try:
            walk(json.loads(line))
        except ValueError:
            continue
    for f in json.loads((run / "findings.json").read_text(encoding="utf-8"))["findings"]:
        walk([{k: v for k, v in o.items() if k != "detail"} for o in f.get("objects", [])])
        walk([e.get("message") for e in f.get("errors", [])])
        walk([graph_error(e.get("message"), "nl")[1] for e in f.get("errors", [])])
    cited = {r.label for rule in load_pack().rules for r in rule.references}
    return {s for s in found | cited | PROPER_NAMES if len(s.strip()) >= 3}


class Visible(HTMLParser):
    """The text a reader sees, without <code>, <q>, <style> and <title> inside the SVG."""

    SKIP = {"code", "q", "style"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.depth += 1
        self.parts.extend(f" {v} " for k, v in attrs if k in ("title", "aria-label") and v)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth:
            self.parts.append(data)


def visible(html: str) -> str:
    page = Visible()
    page.feed(html)
    return " ".join(page.parts)


def english_left(text: str, exempt: set[str]) -> list[str]:
    """English words in ``text`` once tenant strings, backticked commands and file names are taken out."""
    for s in sorted(exempt, key=len, reverse=True):
        text = text.replace(s, " ")
    text = re.sub(r"`[^`]*`|(?<!\w)'[^']*'(?!\w)", " ", text)
    text = re.sub(r"\S+\.(json|html|csv|md|xml|yaml|sha256)\b|--[a-z-]+|https?://\S+|\S+/\S+", " ", text)
    text = re.sub(r"\b\w+(?:[.-]\w+)+\b", " ", text)  # rule ids, permission names, file names
    return sorted({m.group(0) for m in ENGLISH.finditer(text)})


# --------------------------------------------------------------------------- label tables


@pytest.mark.parametrize("name, table", [("report", LABELS), ("drift", DRIFT_LABELS), ("history", HISTORY_LABELS),
                                         ("overview", OVERVIEW_LABELS), ("csv", CSV_COLUMNS), ("cli", CLI_WORDS),
                                         ("verdict", VERDICT_WORDS)])
def test_every_label_has_dutch_and_english(name: str, table: dict[str, dict[str, str]]) -> None:
    for key, entry in table.items():
        assert set(entry) == {"nl", "en"}, f"{name}.{key}"
        assert entry["nl"].strip() and entry["en"].strip(), f"{name}.{key} is empty"
        if entry["nl"] == entry["en"]:
            assert entry["nl"] in SAME_IN_BOTH, f"{name}.{key}: '{entry['nl']}' is not translated"


def test_every_counted_sentence_has_singular_and_plural_in_both_languages() -> None:
    for key, entry in PLURALS.items():
        assert set(entry) == {"nl", "en"}, key
        for one, more in entry.values():
            assert one != more and "{n}" in one and "{n}" in more, key


def test_the_dutch_words_are_the_ones_a_civil_servant_uses() -> None:
    nl = {k: v["nl"] for k, v in LABELS.items()}
    assert nl["error"] == "niet te beoordelen" and nl["medium"] == "gemiddeld" and nl["manual"] == "handmatige controle"
    assert not any(re.search(r"\b(fout|foute|middel|falende|run)\b", v) for v in nl.values()), \
        [v for v in nl.values() if re.search(r"\b(fout|foute|middel|falende|run)\b", v)]
    assert not any(re.search(r"\b(fout|foute|middel|falende|Runs)\b", v["nl"]) for v in HISTORY_LABELS.values())


# --------------------------------------------------------------------------- rendered output


def tenants() -> list[Path]:
    return sorted(p for p in TENANTS.iterdir() if p.is_dir() and (p / "expected.yaml").is_file())


@pytest.mark.parametrize("tenant", tenants(), ids=lambda p: p.name)
def test_no_english_in_a_dutch_run(tenant: Path, tmp_path: Path) -> None:
    run = audit_nl(tenant, tmp_path).run_dir
    exempt = tenant_strings(run)
    texts = {"report.html": visible((run / "report.html").read_text(encoding="utf-8")),
             "report.md": (run / "report.md").read_text(encoding="utf-8"),
             "action-plan.csv": (run / "action-plan.csv").read_text(encoding="utf-8-sig"),
             "index.html": visible((run.parent / "index.html").read_text(encoding="utf-8"))}
    junit = (run / "junit.xml").read_text(encoding="utf-8")
    junit = re.sub(rf"(?m)^(?:{'|'.join(SOURCES)}): ", " ", junit)  # an error line starts with its source id
    texts["junit.xml"] = " ".join(re.findall(r'message="([^"]*)"', junit) + re.findall(r">([^<]+)<", junit))
    for event in json.loads((run / "findings.ocsf.json").read_text(encoding="utf-8")):
        texts[f"ocsf {event['finding_info']['uid']}"] = " ".join(
            [event["message"], event["finding_info"]["title"], event.get("remediation", {}).get("desc", "")])
    left = {name: english_left(text, exempt) for name, text in texts.items()}
    assert {k: v for k, v in left.items() if v} == {}


def test_no_english_in_dutch_drift_history_overview_and_cli(tmp_path: Path) -> None:
    pair = yaml.safe_load((NIGHTS / "new-ai-app-grant" / "pair.yaml").read_text(encoding="utf-8"))
    runs = []
    for night in ("night1", "night2"):
        when = pair[night]
        as_of = when.get("as_of")
        runs.append(audit_nl(NIGHTS / "new-ai-app-grant" / night, tmp_path,
                             datetime.fromisoformat(str(when["now"]).replace("Z", "+00:00")),
                             date.fromisoformat(str(as_of)) if as_of else None).run_dir)
    exempt = tenant_strings(runs[0]) | tenant_strings(runs[1])
    html = (runs[1] / "report.html").read_text(encoding="utf-8")
    assert "Wijzigingen sinds de vorige controle" in html and "verslechterd" in html
    overview = write_overview(tmp_path, "nl", FIXED_NOW)
    runner = CliRunner()
    outputs = {
        "report.html": visible(html), "report.md": (runs[1] / "report.md").read_text(encoding="utf-8"),
        "index.html": visible((runs[1].parent / "index.html").read_text(encoding="utf-8")),
        "overview": visible(overview.read_text(encoding="utf-8")),
        "drift": runner.invoke(cli, ["drift", "--reports", str(tmp_path), "--lang", "nl"]).output,
        "explain": runner.invoke(cli, ["explain", "ai-apps-no-org-data-access", "--lang", "nl"]).output,
        "evaluate": runner.invoke(cli, ["evaluate", str(runs[1]), "--lang", "nl"]).output,
        # the sources in brackets are ids, not words
        "rules": re.sub(r"(?m)\[[\w,]*\]$", "", runner.invoke(cli, ["rules", "--lang", "nl"]).output),
    }
    outputs["explain"] = re.sub(r"(?m)^(Bron|Referentie|Controle in code|Parameters).*$", "", outputs["explain"])
    left = {name: english_left(text, exempt) for name, text in outputs.items()}
    assert {k: v for k, v in left.items() if v} == {}
    assert outputs["drift"].startswith("VERSLECHTERD: ")
    assert outputs["evaluate"].startswith("NIET IN ORDE: ")


def test_the_checker_itself_finds_english() -> None:
    assert english_left("3 rules fail; zie de bewijsmap", set()) == ["fail", "rules"]
    assert english_left("App 'Read the fine print' heeft toegang", {"Read the fine print"}) == []


def test_object_details_speak_dutch_but_quoted_tenant_names_stay_as_written() -> None:
    from m365audit.report.hints_nl import detail_in_lang

    assert detail_in_lang("Mail.ReadWrite (Microsoft Graph, admin consent for all users); not on the approved-apps "
                          "list", "nl") == ("Mail.ReadWrite (Microsoft Graph, beheerderstoestemming voor alle "
                                            "gebruikers); staat niet op de lijst van goedgekeurde apps")
    assert detail_in_lang("excluded from 'report-only; not for all users'", "nl") == \
        "uitgezonderd in 'report-only; not for all users'"
    assert detail_in_lang("x = 1 (not compliant); not assigned: proves nothing", "en") == \
        "x = 1 (not compliant); not assigned: proves nothing"
