"""Alerts by e-mail: mailto: targets, SMTP settings from the environment only, the message, and its delivery."""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote

from m365audit.drift.alert_text import AlertMessage, one_line, subject, text_body
from m365audit.errors import UsageError

ENV_HOST = "M365AUDIT_SMTP_HOST"
ENV_PORT = "M365AUDIT_SMTP_PORT"
ENV_USER = "M365AUDIT_SMTP_USER"
ENV_PASSWORD = "M365AUDIT_SMTP_PASSWORD"
ENV_FROM = "M365AUDIT_SMTP_FROM"
ENV_TLS = "M365AUDIT_SMTP_TLS"
TLS_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
PERMANENT = (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
             smtplib.SMTPNotSupportedError)


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server: host, port, security and credentials, from M365AUDIT_SMTP_* (never from options)."""

    host: str
    port: int
    tls: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "m365audit@localhost"


def is_mail(target: str) -> bool:
    return target.lower().startswith("mailto:")


def recipients(target: str) -> list[str]:
    """mailto:a@x.nl,b@x.nl → the addresses; a malformed one is a usage error (exit 2) before anything runs."""
    raw = unquote(target[len("mailto:"):].split("?", 1)[0])
    found = [a.strip() for a in raw.split(",") if a.strip()]
    if not found:
        raise UsageError(f"--notify {one_line(target, 80)}: no address after mailto:",
                         hint="e.g. --notify mailto:security@gemeente.example")
    for address in found:
        if not ADDRESS.match(address):
            raise UsageError(f"--notify: {one_line(address, 80)!r} is not an e-mail address",
                             hint="e.g. --notify mailto:security@gemeente.example (several: separated by commas)")
    return found


def smtp_settings(env: Mapping[str, str]) -> SmtpSettings:
    """Read and check M365AUDIT_SMTP_*: a missing host, a bad port or credentials without TLS are exit 2."""
    host = env.get(ENV_HOST, "").strip()
    if not host:
        raise UsageError(f"--notify mailto: needs the mail server in {ENV_HOST}",
                         hint=f"set {ENV_HOST} (and {ENV_PORT}, {ENV_TLS}=starttls|tls|none, {ENV_USER}, "
                              f"{ENV_PASSWORD}, {ENV_FROM} as needed); README: alerts by e-mail")
    tls = env.get(ENV_TLS, "starttls").strip().lower() or "starttls"
    if tls not in TLS_MODES:
        raise UsageError(f"{ENV_TLS}={one_line(tls, 20)!r} is not one of {', '.join(TLS_MODES)}",
                         hint="starttls (port 587), tls (port 465) or none (a relay on the local network)")
    port_text = env.get(ENV_PORT, "").strip() or str(DEFAULT_PORTS[tls])
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"{ENV_PORT}={one_line(port_text, 20)!r} is not a port number", hint="e.g. 587")
    user = env.get(ENV_USER) or None
    if user and tls == "none":
        raise UsageError(f"{ENV_USER} is set but {ENV_TLS}=none: the password would cross the network unencrypted",
                         hint=f"use {ENV_TLS}=starttls or tls, or a relay that needs no sign-in")
    sender = env.get(ENV_FROM, "").strip() or f"m365audit@{host}"
    if not ADDRESS.match(sender):
        raise UsageError(f"{ENV_FROM}={one_line(sender, 80)!r} is not an e-mail address",
                         hint="e.g. m365audit@gemeente.example")
    return SmtpSettings(host=host, port=int(port_text), tls=tls, user=user, password=env.get(ENV_PASSWORD) or None,
                        sender=sender)


def build(message: AlertMessage, sender: str, to: list[str]) -> EmailMessage:
    """Subject and text (the alert, then the Markdown report); report.html attached when the night has a run."""
    mail = EmailMessage()
    mail["Subject"] = subject(message)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain="m365audit.invalid")
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(text_body(message), subtype="plain", charset="utf-8")
    if message.html_file is not None and message.html_file.is_file():
        mail.add_attachment(message.html_file.read_bytes(), maintype="text", subtype="html", filename="report.html")
    return mail


def _send(settings: SmtpSettings, mail: EmailMessage, to: list[str], timeout: float) -> None:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.tls == "tls":
        smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    with smtp:
        if settings.tls == "starttls":
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS (M365AUDIT_SMTP_TLS)")
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(mail, from_addr=settings.sender, to_addrs=to)


async def send(settings: SmtpSettings, message: AlertMessage, to: list[str], attempts: int, backoff: float,
               timeout: float) -> tuple[bool, int, str | None]:
    """Deliver with bounded retries on network and temporary SMTP errors: (ok, attempts, error)."""
    mail = build(message, settings.sender, to)
    error: str | None = None
    attempt = 0
    for attempt in range(1, max(1, attempts) + 1):
        try:
            await asyncio.to_thread(_send, settings, mail, to, timeout)
            return True, attempt, None
        except PERMANENT as exc:
            return False, attempt, _describe(exc, settings)
        except (OSError, smtplib.SMTPException) as exc:
            error = _describe(exc, settings)
        if attempt < attempts:
            await asyncio.sleep(backoff * (2 ** (attempt - 1)))
    return False, attempt, error


def _describe(exc: BaseException, settings: SmtpSettings) -> str:
    text = one_line(f"{type(exc).__name__}: {exc}", 300)
    if settings.password:
        text = text.replace(settings.password, "***")
    return text
