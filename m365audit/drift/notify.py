"""Alert delivery: webhooks (generic JSON, signed; Teams Workflows card) and mail, retried, recorded in notify.json."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import httpx

from m365audit.drift.alert_text import AlertMessage, generic_body, teams_body
from m365audit.drift.mail import is_mail, recipients, send, smtp_settings
from m365audit.drift.nights import ALERT_KINDS, DriftReport
from m365audit.errors import UsageError
from m365audit.models import Frozen

SECRET_ENV = "M365AUDIT_NOTIFY_SECRET"
SIGNATURE_HEADER = "X-M365audit-Signature"
TIMESTAMP_HEADER = "X-M365audit-Timestamp"
TEAMS_HOSTS = ("logic.azure.com", "powerplatform.com", "powerautomate.com", "webhook.office.com")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0
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
    env: Mapping[str, str] | None = field(default=None, repr=False)
    """Where M365AUDIT_SMTP_* are read (None: os.environ)."""


class Delivery(Frozen):
    """The outcome of one webhook: recorded in notify.json, never with the URL's secrets."""

    target: str
    url_sha256: str
    form: Literal["generic", "teams", "mail"]
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    signed: bool = False


class NotifyRecord(Frozen):
    """notify.json: whether an alert was due and what happened to every delivery."""

    alert: bool
    reason: str
    causes: list[str] = []
    """The keys of the causes told (alerts.py); their words are in the alert itself."""
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


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over 'timestamp.body' (the receiver checks both, so an old body cannot be replayed)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _request(url: str, message: AlertMessage, settings: NotifySettings) -> tuple[bytes, dict[str, str], bool]:
    teams = is_teams(url)
    doc = teams_body(message) if teams else generic_body(message)
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


async def deliver_one(client: httpx.AsyncClient, url: str, message: AlertMessage,
                      settings: NotifySettings) -> Delivery:
    """One target's outcome; a failure of any kind (not only HTTP) is a failed delivery, never an exception."""
    try:
        return await _deliver(client, url, message, settings)
    except Exception as exc:  # a bug or a surprise in the alert code must not cost the run (issue 13)
        return failed_delivery(url, exc)


def failed_delivery(url: str, exc: BaseException) -> Delivery:
    """A delivery that failed inside m365audit (not at the receiver): what went wrong, without the URL's secrets."""
    try:
        target, form = _target_name(url), _form(url)
    except Exception:
        target, form = shown(url), "generic"
    return Delivery(target=target, url_sha256=hashlib.sha256(url.encode("utf-8", "replace")).hexdigest()[:16],
                    form=form, ok=False, attempts=0,
                    error=f"not sent: internal error {type(exc).__name__}: {_scrub(str(exc), url)[:300]}")


async def _deliver(client: httpx.AsyncClient, url: str, message: AlertMessage,
                   settings: NotifySettings) -> Delivery:
    """POST with bounded retries on network errors, 408/429/5xx; other 4xx are permanent."""
    data, headers, signed = _request(url, message, settings)
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


async def deliver(message: AlertMessage, settings: NotifySettings) -> list[Delivery]:
    """Send one night's alert to every target at once; a failing target never stops or raises past the others."""
    async def guarded(target: str, client: httpx.AsyncClient) -> Delivery:
        try:  # the channel is called inside the guard: even a synchronous raise is a failed delivery
            if is_mail(target):
                return await _mail_one(target, message, settings)
            return await deliver_one(client, target, message, settings)
        except Exception as exc:  # a bug in one channel is recorded, it never loses the run
            return failed_delivery(target, exc)

    async with httpx.AsyncClient(follow_redirects=False) as client:
        return list(await asyncio.gather(*(guarded(t, client) for t in settings.urls)))


async def _mail_one(target: str, message: AlertMessage, settings: NotifySettings) -> Delivery:
    to = recipients(target)
    ok, attempts, error = await send(smtp_settings(settings.env if settings.env is not None else os.environ),
                                     message, to, settings.attempts, settings.backoff, settings.timeout)
    return Delivery(target=_target_name(target), url_sha256=_digest(target), form="mail", ok=ok, attempts=attempts,
                    error=error)


def _target_name(target: str) -> str:
    return "mailto:" + ",".join(recipients(target)) if is_mail(target) else redact(target)


def _digest(target: str) -> str:
    return hashlib.sha256(target.encode()).hexdigest()[:16]


def _form(target: str) -> Literal["generic", "teams", "mail"]:
    return "mail" if is_mail(target) else "teams" if is_teams(target) else "generic"


def check_targets(targets: tuple[str, ...], env: Mapping[str, str] | None = None, option: str = "--notify") -> None:
    """At start (exit 2): every target is a usable http(s) URL (check_urls) or a mailto: with SMTP settings."""
    environ = os.environ if env is None else env
    for target in targets:
        if is_mail(target):
            recipients(target)
            smtp_settings(environ)
        else:
            check_urls([target], option)


async def notify(report: DriftReport | None, settings: NotifySettings) -> NotifyRecord:
    """A drift report alone (no alert state): deliver when it has regressions; always return a record."""
    if report is None:
        return NotifyRecord(alert=False, reason="first run of this tenant: nothing to compare")
    if not report.alert:
        return NotifyRecord(alert=False, reason="no regression since run " + report.old_run.run_id)
    from m365audit.drift.alerts import run_causes

    causes = run_causes([], report)
    message = AlertMessage(tenant_id=report.tenant_id, tenant_name=report.tenant_name, lang="en", causes=causes,
                           verdict=report.new_run.verdict, run_id=report.new_run.run_id, run_dir=settings.run_dir,
                           report_link=settings.run_dir or None, drift=report)
    deliveries = await deliver(message, settings)
    kinds = sorted({r.kind for r in report.rules if r.kind in ALERT_KINDS})
    return NotifyRecord(alert=True, reason=", ".join(kinds), causes=[c.key for c in causes], deliveries=deliveries)


def default_settings(targets: tuple[str, ...], secret: str | None, run_dir: str = "",
                     env: Mapping[str, str] | None = None) -> NotifySettings:
    """What a night's run uses: ATTEMPTS tries with BACKOFF, TIMEOUT seconds each."""
    return NotifySettings(urls=targets, secret=secret, run_dir=run_dir, attempts=ATTEMPTS, backoff=BACKOFF,
                          timeout=TIMEOUT, env=env)


def record_bytes(record: NotifyRecord) -> bytes:
    return record.model_dump_json(indent=2).encode()


def failed_record(urls: tuple[str, ...], exc: BaseException) -> NotifyRecord:
    """notify.json when the alert code itself failed: every URL recorded as not delivered, the run kept."""
    return NotifyRecord(alert=True, reason=f"the alert could not be prepared ({type(exc).__name__}); see deliveries",
                        deliveries=[failed_delivery(url, exc) for url in urls])
