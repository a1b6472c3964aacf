"""Drift alerts: POST the drift summary to webhooks (generic JSON or Teams Workflows), signed, retried, recorded."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from m365audit.drift.nights import ALERT_KINDS, DriftReport
from m365audit.drift.text import headline, summary_lines
from m365audit.errors import UsageError
from m365audit.models import Frozen
from m365audit.report import md_escape

SECRET_ENV = "M365AUDIT_NOTIFY_SECRET"
SIGNATURE_HEADER = "X-M365audit-Signature"
TIMESTAMP_HEADER = "X-M365audit-Timestamp"
TEAMS_HOSTS = ("logic.azure.com", "powerplatform.com", "powerautomate.com", "webhook.office.com")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0
CARD_LINES = 15
URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")
ATTEMPTS = 4
BACKOFF = 1.0
TIMEOUT = 10.0


@dataclass(frozen=True)
class NotifySettings:
    """Where and how to deliver; the secret comes from the environment only and is never shown."""

    urls: tuple[str, ...]
    secret: str | None = field(default=None, repr=False)
    attempts: int = 4
    backoff: float = 1.0
    timeout: float = 10.0
    run_dir: str = ""


class Delivery(Frozen):
    """The outcome of one webhook: recorded in notify.json, never with the URL's secrets."""

    target: str
    url_sha256: str
    form: Literal["generic", "teams"]
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    signed: bool = False


class NotifyRecord(Frozen):
    """notify.json: whether an alert was due and what happened to every delivery."""

    alert: bool
    reason: str
    deliveries: list[Delivery] = []

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.ok]


def redact(url: str) -> str:
    """scheme://host/… : webhook paths and queries carry tokens (Teams 'sig=') and are never written down."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""  # user:password@ is never kept
    except ValueError:  # not a URL check_urls would let through; still never raise while recording a failure
        return shown(url)
    return f"{parts.scheme}://{parts.hostname or ''}{port}{'/…' if parts.path.strip('/') or parts.query else ''}"


SHOWN_CHARS = re.compile(r"[^A-Za-z0-9._\-\[\]:]")


def shown(url: str) -> str:
    """scheme://host/… for any string, even one that is no URL: never credentials, never raw control bytes."""
    scheme, sep, rest = url.partition("://")
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2] if sep else ""
    scheme, host = SHOWN_CHARS.sub("?", scheme[:16]), SHOWN_CHARS.sub("?", host[:100])
    return f"{scheme}://{host}/…" if sep else "(not a URL)"


def url_problem(url: str) -> str | None:
    """Why a --notify URL cannot be used, or None: http(s), a host, a valid port, no spaces, no user:password@."""
    if not url or any(ch.isspace() or ord(ch) < 0x20 or 0x7f <= ord(ch) < 0xa0 for ch in url):
        return "it is empty or contains spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return "it cannot be read as a URL (check the host and the port)"
    if parts.scheme.lower() not in ("http", "https"):
        return "only http:// and https:// URLs can be notified"
    if "@" in parts.netloc:
        return "it carries a user name or password (user:password@host); those would be written down"
    if not parts.hostname:
        return "it has no host"
    return None


def check_urls(urls: tuple[str, ...] | list[str], option: str = "--notify") -> None:
    """Refuse unusable webhook URLs when a command starts (exit 2), naming each only as scheme://host/…."""
    for url in urls:
        problem = url_problem(url)
        if problem is not None:
            raise UsageError(f"{option} {shown(url)}: {problem}",
                             hint="give an http:// or https:// URL with a host and no spaces; the receiver's token "
                                  "belongs in its path or query, which are never printed or recorded")


def is_teams(url: str) -> bool:
    """Teams Workflows (Power Automate) and legacy Office 365 connector URLs, recognised by host."""
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in TEAMS_HOSTS)


def generic_body(report: DriftReport, run_dir: str) -> dict[str, Any]:
    """A stable JSON document for any receiver: headline, regressions, and every summary line."""
    return {
        "event": "m365audit.drift", "schema_version": 1, "tenant_id": report.tenant_id,
        "tenant_name": report.tenant_name, "old_run": report.old_run.run_id, "new_run": report.new_run.run_id,
        "verdict": report.new_run.verdict, "run_dir": run_dir, "headline": headline(report),
        "regressions": [{"rule_id": r.rule_id, "severity": r.severity.value, "kind": r.kind,
                         "old_status": r.old_status.value if r.old_status else None,
                         "new_status": r.new_status.value if r.new_status else None,
                         "title": r.title.en, "added": [o.model_dump() for o in r.added[:50]],
                         "causes": [c.en for c in r.causes]} for r in report.regressions],
        "summary": summary_lines(report),
    }


def teams_body(report: DriftReport, run_dir: str) -> dict[str, Any]:
    """A Teams Workflows 'post to a channel when a webhook request is received' body: one Adaptive Card.

    TextBlocks and facts render Markdown, so every text carrying tenant strings is escaped as report.md's are.
    """
    facts = [{"title": "Tenant", "value": md_escape(report.tenant_name or report.tenant_id)},
             {"title": "Run", "value": md_escape(f"{report.old_run.run_id} → {report.new_run.run_id}")},
             {"title": "Verdict", "value": md_escape(report.new_run.verdict)}]
    if run_dir:
        facts.append({"title": "Run folder", "value": md_escape(run_dir)})
    lines = [line for line in summary_lines(report) if line.split(":")[0] in ("REGRESSION",)] or summary_lines(report)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": "m365audit: regression", "weight": "Bolder", "size": "Large",
         "color": "Attention", "wrap": True},
        {"type": "TextBlock", "text": md_escape(headline(report)), "wrap": True},
        {"type": "FactSet", "facts": facts},
    ]
    body += [{"type": "TextBlock", "text": f"- {md_escape(line)}", "wrap": True, "spacing": "Small"}
             for line in lines[:CARD_LINES]]
    if len(lines) > CARD_LINES:
        body.append({"type": "TextBlock", "text": f"… and {len(lines) - CARD_LINES} more (drift.json)",
                     "isSubtle": True, "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over 'timestamp.body' (the receiver checks both, so an old body cannot be replayed)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _request(url: str, report: DriftReport, settings: NotifySettings) -> tuple[bytes, dict[str, str], bool]:
    teams = is_teams(url)
    doc = teams_body(report, settings.run_dir) if teams else generic_body(report, settings.run_dir)
    data = json.dumps(doc, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "m365audit"}
    signed = bool(settings.secret) and not teams
    if signed and settings.secret:
        stamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = stamp
        headers[SIGNATURE_HEADER] = sign(settings.secret, stamp, data)
    return data, headers, signed


def _wait(response: httpx.Response | None, attempt: int, backoff: float) -> float:
    """Exponential backoff; a Retry-After header is honoured up to MAX_RETRY_AFTER seconds."""
    delay = float(backoff * (2 ** (attempt - 1)))
    if response is not None:
        with contextlib.suppress(ValueError):
            delay = max(delay, float(response.headers.get("Retry-After", "")))
    return min(delay, MAX_RETRY_AFTER)


async def deliver_one(client: httpx.AsyncClient, url: str, report: DriftReport, settings: NotifySettings) -> Delivery:
    """One webhook's outcome; a failure of any kind (not only HTTP) is a failed delivery, never an exception."""
    try:
        return await _deliver(client, url, report, settings)
    except Exception as exc:  # a bug or a surprise in the alert code must not cost the run (issue 13)
        return failed_delivery(url, exc)


def failed_delivery(url: str, exc: BaseException) -> Delivery:
    """A delivery that failed inside m365audit (not at the receiver): what went wrong, without the URL's secrets."""
    try:
        target, form = redact(url), "teams" if is_teams(url) else "generic"
    except Exception:
        target, form = shown(url), "generic"
    return Delivery(target=target, url_sha256=hashlib.sha256(url.encode("utf-8", "replace")).hexdigest()[:16],
                    form=form, ok=False, attempts=0,
                    error=f"not sent: internal error {type(exc).__name__}: {_scrub(str(exc), url)[:300]}")


async def _deliver(client: httpx.AsyncClient, url: str, report: DriftReport, settings: NotifySettings) -> Delivery:
    """POST with bounded retries on network errors, 408/429/5xx; other 4xx are permanent."""
    data, headers, signed = _request(url, report, settings)
    status: int | None = None
    error: str | None = None
    attempt = 0
    for attempt in range(1, max(1, settings.attempts) + 1):
        response: httpx.Response | None = None
        try:
            response = await client.post(url, content=data, headers=headers, timeout=settings.timeout)
            status, error = response.status_code, None
            if response.is_success:
                break
            error = f"HTTP {status}"
            if status not in RETRY_STATUSES:
                break
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {_scrub(str(exc), url)}"
        if attempt < settings.attempts:
            await asyncio.sleep(_wait(response, attempt, settings.backoff))
    return Delivery(target=redact(url), url_sha256=hashlib.sha256(url.encode()).hexdigest()[:16],
                    form="teams" if is_teams(url) else "generic", ok=error is None, attempts=attempt,
                    status=status, error=error, signed=signed)


def _scrub(text: str, url: str) -> str:
    """Exception texts may quote the URL (whole or in part); keep its secrets out."""
    scrubbed = URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text.replace(url, redact(url)) if url else text)
    return "".join(ch if ch.isprintable() else "?" for ch in scrubbed)


async def notify(report: DriftReport | None, settings: NotifySettings) -> NotifyRecord:
    """Deliver when the drift has regressions; always return a record of what was (not) sent and why."""
    if report is None:
        return NotifyRecord(alert=False, reason="first run of this tenant: nothing to compare")
    if not report.alert:
        return NotifyRecord(alert=False, reason="no regression since run " + report.old_run.run_id)
    async with httpx.AsyncClient(follow_redirects=False) as client:
        deliveries = list(await asyncio.gather(*(deliver_one(client, url, report, settings) for url in settings.urls)))
    kinds = sorted({r.kind for r in report.rules if r.kind in ALERT_KINDS})
    return NotifyRecord(alert=True, reason=", ".join(kinds), deliveries=deliveries)


def record_bytes(record: NotifyRecord) -> bytes:
    return record.model_dump_json(indent=2).encode()


async def alert(report: DriftReport | None, urls: tuple[str, ...], secret: str | None,
                run_dir: str) -> NotifyRecord | None:
    """What the runner calls: None when no --notify URL was given, else the record for notify.json."""
    if not urls:
        return None
    try:
        return await notify(report, NotifySettings(urls=urls, secret=secret, run_dir=run_dir, attempts=ATTEMPTS,
                                                   backoff=BACKOFF, timeout=TIMEOUT))
    except Exception as exc:  # never raise into the run: the alert is recorded as failed instead
        return failed_record(urls, exc)


def failed_record(urls: tuple[str, ...], exc: BaseException) -> NotifyRecord:
    """notify.json when the alert code itself failed: every URL recorded as not delivered, the run kept."""
    return NotifyRecord(alert=True, reason=f"the alert could not be prepared ({type(exc).__name__}); see deliveries",
                        deliveries=[failed_delivery(url, exc) for url in urls])
