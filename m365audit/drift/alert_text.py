"""An alert in words (Dutch and English): the message, its lines, the Teams card, the webhook body, the mail text."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from m365audit.drift.alerts import Cause
from m365audit.drift.nights import DriftReport
from m365audit.drift.text import headline, summary_lines
from m365audit.evidence import safe_name
from m365audit.models import Lang
from m365audit.report import VERDICT_WORDS, in_lang

CARD_LINES = 15
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")
MARKDOWN = re.compile(r"[\\`*_{}\[\]()<>#+!|~]")

W: dict[str, dict[Lang, str]] = {
    **VERDICT_WORDS,
    "failed": {"nl": "MISLUKT: geen bewijs", "en": "FAILED: no evidence"},
    "regression": {"nl": "Verslechterd sinds de vorige controle: {title} ({old} → {new}).",
                   "en": "Got worse since the previous run: {title} ({old} → {new})."},
    "new-objects": {"nl": "Nieuw sinds de vorige controle bij {title}: {objects}.",
                    "en": "New offending objects for {title}: {objects}."},
    "objects": {"nl": "Nieuwe objecten: {objects}.", "en": "New objects: {objects}."},
    "became-error": {"nl": "Niet te beoordelen: {title}. {message}",
                     "en": "Could not be judged (error): {title}. {message}"},
    "incomplete": {"nl": "Het bewijs is {n} nachten achter elkaar onvolledig (sinds {since}).",
                   "en": "Evidence has been incomplete {n} nights in a row (since {since})."},
    "permissions": {"nl": "De audit-app mist applicatiemachtigingen: {perms}. Geef de audit-app deze machtigingen en "
                          "verleen beheerderstoestemming (admin consent); `m365audit permissions --format az` geeft "
                          "de opdrachten.",
                    "en": "The audit app lacks permissions: {perms}. Grant them and give admin consent; "
                          "`m365audit permissions --format az` prints the commands."},
    "failed-line": {"nl": "De controle is mislukt voordat er bewijs was ({failure}): {message}",
                    "en": "The audit failed before any evidence was taken ({failure}): {message}"},
    "sign-in": {"nl": "aanmelding", "en": "sign-in"},
    "network": {"nl": "netwerk", "en": "network"},
    "environment": {"nl": "omgeving", "en": "environment"},
    "configuration": {"nl": "configuratie", "en": "configuration"},
    "fix": {"nl": "Oplossing: {hint}", "en": "Fix: {hint}"},
    "reminder": {"nl": "Herinnering (al {n} nachten): ", "en": "Reminder ({n} nights so far): "},
    "more": {"nl": "en nog {n}", "en": "and {n} more"},
    "more_lines": {"nl": "… en nog {n} regels (zie het rapport)", "en": "… and {n} more lines (see the report)"},
    "tenant": {"nl": "Tenant", "en": "Tenant"},
    "verdict": {"nl": "Oordeel", "en": "Verdict"},
    "run": {"nl": "Controle", "en": "Run"},
    "report": {"nl": "Rapport", "en": "Report"},
    "open": {"nl": "Rapport openen", "en": "Open the report"},
    "title": {"nl": "m365audit: {n} melding(en) voor {tenant}", "en": "m365audit: {n} alert(s) for {tenant}"},
    "none": {"nl": "(geen run: er is vannacht geen bewijs)", "en": "(no run: no evidence tonight)"},
    "mail_report": {"nl": "Het rapport van deze controle volgt hieronder; report.html is bijgevoegd.",
                    "en": "The report of this run follows; report.html is attached."},
}


def one_line(text: str, limit: int = 200) -> str:
    """A tenant string fit for a mail header or a card title: no CR, LF or other control characters."""
    return CONTROL.sub(" ", text).strip()[:limit]


@dataclass(frozen=True)
class AlertMessage:
    """Everything one night's alert says, whatever the channel."""

    tenant_id: str
    tenant_name: str
    lang: Lang
    causes: list[Cause]
    verdict: str | None = None
    """pass, fail or error; None: the night failed before any evidence (exit 4)."""
    exit_code: int | None = None
    run_id: str | None = None
    run_dir: str = ""
    report_link: str | None = None
    drift: DriftReport | None = None
    markdown: str | None = field(default=None, repr=False)
    html_file: Path | None = None


def report_link(run_dir: Path | str, tenant_id: str, run_id: str, base: str | None) -> str:
    """Where the reader finds report.html: under --report-url when given, else the path on this machine."""
    if base:
        return f"{base.rstrip('/')}/{quote(safe_name(tenant_id))}/{quote(run_id)}/report.html"
    return str(Path(run_dir) / "report.html")


MONTHS = {"nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
                  "november", "december"),
          "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December")}


def long_date(iso: str | None, lang: Lang) -> str:
    """2026-12-01 as '1 december 2026' (nl) or '1 December 2026' (en), as running text writes dates."""
    try:
        year, month, day = (int(p) for p in (iso or "").split("-"))
        return f"{day} {MONTHS[lang][month - 1]} {year}"
    except (ValueError, IndexError):
        return iso or "?"


def card_escape(text: str) -> str:
    """Tenant strings on a Teams card: Markdown (links, emphasis) shown as typed, never rendered."""
    return MARKDOWN.sub(lambda m: "\\" + m.group(0), text)


def cause_line(c: Cause, lang: Lang, esc: Callable[[str], str] = str) -> str:
    """One sentence for one cause (rule titles, not ids), with its fix when there is one; esc: tenant strings."""
    title = c.title.get(lang) if c.title else (c.rule_id or "")
    more = f" {W['more'][lang].format(n=c.more_objects)}" if c.more_objects else ""
    objects = ", ".join(esc(o) for o in c.objects) + more
    if c.kind == "regression":
        text = W["regression"][lang].format(title=title, old=c.old_status or "—", new=c.new_status or "—")
        text += (" " + W["objects"][lang].format(objects=objects)) if c.objects else ""
    elif c.kind == "new-objects":
        text = W["new-objects"][lang].format(title=title, objects=objects)
    elif c.kind == "became-error":
        text = W["became-error"][lang].format(title=title, message=esc(c.message or "")).strip()
    elif c.kind == "incomplete":
        text = W["incomplete"][lang].format(n=c.nights, since=long_date(c.since, lang))
    elif c.kind == "permissions":
        text = W["permissions"][lang].format(perms=", ".join(c.permissions))
    else:
        text = W["failed-line"][lang].format(failure=W[c.failure or "environment"][lang],
                                             message=esc(c.message or ""))
    if c.hint and c.kind in ("became-error", "failed"):
        text += " " + W["fix"][lang].format(hint=in_lang(c.hint, lang))
    if c.reminder and c.kind != "incomplete":
        text = W["reminder"][lang].format(n=c.nights) + text
    return one_line(text, 2000)


def lines(message: AlertMessage, esc: Callable[[str], str] = str) -> list[str]:
    return [cause_line(c, message.lang, esc) for c in message.causes]


def verdict_word(message: AlertMessage) -> str:
    return W[message.verdict or "failed"][message.lang]


def tenant_label(message: AlertMessage) -> str:
    return one_line(message.tenant_name or message.tenant_id, 120)


def subject(message: AlertMessage) -> str:
    """The mail subject: verdict and tenant on one line (CR/LF from a hostile tenant name never reach a header)."""
    return one_line(f"{W['title'][message.lang].format(n=len(message.causes), tenant=tenant_label(message))}: "
                    f"{verdict_word(message)}", 250)


def text_body(message: AlertMessage) -> str:
    """The plain text: the facts, one line per cause, then (with a run) the Markdown report."""
    L = message.lang
    head = [subject(message), "",
            f"{W['tenant'][L]}: {tenant_label(message)} ({one_line(message.tenant_id, 80)})",
            f"{W['verdict'][L]}: {verdict_word(message)}",
            f"{W['run'][L]}: {message.run_id or W['none'][L]}"]
    if message.report_link:
        head.append(f"{W['report'][L]}: {message.report_link}")
    body = head + [""] + [f"- {line}" for line in lines(message)]
    if message.markdown:
        body += ["", W["mail_report"][L], "", "-" * 60, "", message.markdown]
    return "\n".join(body) + "\n"


def teams_body(message: AlertMessage) -> dict[str, Any]:
    """A Teams Workflows 'post to a channel when a webhook request is received' body: one Adaptive Card."""
    L = message.lang
    facts = [{"title": W["tenant"][L], "value": card_escape(tenant_label(message))},
             {"title": W["verdict"][L], "value": verdict_word(message)},
             {"title": W["run"][L], "value": message.run_id or W["none"][L]}]
    if message.report_link:
        facts.append({"title": W["report"][L], "value": message.report_link})
    shown = lines(message, card_escape)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": f"m365audit: {verdict_word(message)}", "weight": "Bolder", "size": "Large",
         "color": "Good" if message.verdict == "pass" else "Attention", "wrap": True},
        {"type": "FactSet", "facts": facts},
    ]
    body += [{"type": "TextBlock", "text": f"- {line}", "wrap": True, "spacing": "Small"}
             for line in shown[:CARD_LINES]]
    if len(shown) > CARD_LINES:
        body.append({"type": "TextBlock", "text": W["more_lines"][L].format(n=len(shown) - CARD_LINES),
                     "isSubtle": True, "wrap": True})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                            "version": "1.4", "lang": L, "body": body}
    if message.report_link and message.report_link.startswith(("https://", "http://")):
        card["actions"] = [{"type": "Action.OpenUrl", "title": W["open"][L], "url": message.report_link}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def generic_body(message: AlertMessage) -> dict[str, Any]:
    """A stable JSON document for any receiver: the verdict, every cause, and (with a run) the drift summary."""
    report = message.drift
    doc: dict[str, Any] = {
        "event": "m365audit.drift", "schema_version": 2, "tenant_id": message.tenant_id,
        "tenant_name": message.tenant_name, "lang": message.lang,
        "old_run": report.old_run.run_id if report else None, "new_run": message.run_id,
        "verdict": message.verdict, "exit_code": message.exit_code, "run_dir": message.run_dir,
        "report": message.report_link,
        "headline": headline(report) if report else (lines(message)[0] if message.causes else ""),
        "causes": [c.model_dump(mode="json") for c in message.causes],
        "alert_lines": lines(message),
        "regressions": [{"rule_id": r.rule_id, "severity": r.severity.value, "kind": r.kind,
                         "old_status": r.old_status.value if r.old_status else None,
                         "new_status": r.new_status.value if r.new_status else None,
                         "title": r.title.get(message.lang), "added": [o.model_dump() for o in r.added[:50]],
                         "causes": [c.get(message.lang) for c in r.causes]} for r in report.regressions]
        if report else [],
        "summary": summary_lines(report, message.lang) if report else [],
    }
    return doc
