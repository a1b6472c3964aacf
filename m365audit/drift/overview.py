"""reports/index.html: one page over every tenant (latest verdict, open regressions, evidence age, links)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from m365audit.drift.history import INDEX, page_labels, tenant_dirs, tenant_history, tenant_name, when, write_index
from m365audit.models import Lang
from m365audit.report import template_environment

STALE_HOURS = 36
"""Evidence older than this means a nightly run was missed: the overview marks it."""

LABELS: dict[str, dict[Lang, str]] = {
    "overview_title": {"nl": "Overzicht van alle tenants", "en": "Overview of every tenant"},
    "overview_note": {"nl": "Per tenant de laatste controle. Dit overzicht is geen onderdeel van het bewijs; het "
                            "bewijs staat in de bewijsmap van elke controle.",
                      "en": "The latest run of each tenant. This overview is not part of the evidence; the "
                            "evidence is each run's folder."},
    "tenant": {"nl": "Tenant", "en": "Tenant"},
    "latest": {"nl": "Laatste controle", "en": "Latest run"},
    "open_regressions": {"nl": "Verslechterd sinds de vorige controle", "en": "Regressions since the run before"},
    "age": {"nl": "Leeftijd van het bewijs", "en": "Evidence age"},
    "history": {"nl": "verloop", "en": "history"},
    "report": {"nl": "rapport", "en": "report"},
    "stale": {"nl": "te oud: de nachtelijke controle is niet gedraaid", "en": "too old: the nightly run did not run"},
    "hours": {"nl": "{n} uur", "en": "{n} h"},
    "days": {"nl": "{n} dag|{n} dagen", "en": "{n} day|{n} days"},
    "generated": {"nl": "Gemaakt op", "en": "Generated"},
    "no_tenants": {"nl": "Nog geen complete controles.", "en": "No complete runs yet."},
}


def age_text(hours: float, lang: Lang) -> str:
    """'5 uur' under two days, else '3 dagen'."""
    if hours < 48:
        return LABELS["hours"][lang].format(n=max(0, int(hours)))
    one, more = LABELS["days"][lang].split("|")
    days = int(hours // 24)
    return (one if days == 1 else more).format(n=days)


def tenant_rows(reports: Path, lang: Lang, now: datetime) -> list[dict[str, Any]]:
    """One row per tenant folder with a complete run, worst verdict first."""
    rows = []
    for tenant_dir in tenant_dirs(reports):
        history = tenant_history(tenant_dir)
        latest = history[-1]
        started = _parse(latest.started_at)
        hours = (now - started).total_seconds() / 3600 if started else None
        rows.append({"tenant_id": tenant_dir.name, "name": tenant_name(tenant_dir), "run_id": latest.run_id,
                     "date": when(latest.started_at, lang) or latest.run_id, "verdict": latest.verdict,
                     "regressions": latest.regressions, "age": age_text(hours, lang) if hours is not None else "?",
                     "stale": hours is None or hours > STALE_HOURS})
    order = {"fail": 0, "error": 1, "pass": 2}
    return sorted(rows, key=lambda r: (order.get(r["verdict"], 3), -(r["regressions"] or 0), r["tenant_id"]))


def _parse(started_at: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat((started_at or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def render_overview(reports: Path, lang: Lang, now: datetime) -> str:
    L = {**page_labels(lang), **{k: v[lang] for k, v in LABELS.items()}}
    return template_environment().get_template("overview.html.j2").render(
        lang=lang, L=L, rows=tenant_rows(reports, lang, now), generated=when(now.isoformat(), lang))


def write_overview(reports: Path, lang: Lang, now: datetime | None = None) -> Path:
    """Rewrite every tenant's index.html and reports/index.html (atomically: a reader never sees half a page)."""
    for tenant_dir in tenant_dirs(reports):
        write_index(tenant_dir, lang)
    target = reports / INDEX
    tmp = reports / f".{INDEX}.{os.getpid()}.tmp"
    tmp.write_text(render_overview(reports, lang, now or datetime.now(timezone.utc)), encoding="utf-8")
    os.replace(tmp, target)
    return target
