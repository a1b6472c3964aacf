"""A tenant's runs over time: verdict counts, a rules × nights grid and reports/<tenant>/index.html with a trend."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from m365audit.evidence import MANIFEST, find_tenant, runs
from m365audit.models import Frozen, Lang
from m365audit.report import labels, template_environment

INDEX = "index.html"
CHART_W, CHART_H, PAD = 640, 180, 28
GRID_NIGHTS = 14
"""The rules × nights grid shows this many of the newest runs."""
STATUSES = ("pass", "fail", "error", "waived", "manual")
MONTHS: dict[Lang, tuple[str, ...]] = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")}
SYMBOL = {"pass": "✓", "fail": "✗", "error": "?", "waived": "U", "manual": "H"}

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"nl": "Controles van", "en": "Runs of"},
    "chart": {"nl": "Regels die niet voldoen of niet te beoordelen zijn, per controle",
              "en": "Failing and unjudged (error) rules per run"},
    "run": {"nl": "Controle", "en": "Run"},
    "date": {"nl": "Datum", "en": "Date"},
    "verdict": {"nl": "Oordeel", "en": "Verdict"},
    "regressions": {"nl": "Verslechterd", "en": "Regressions"},
    "grid": {"nl": "Status per regel per controle", "en": "Status per rule per run"},
    "grid_note": {"nl": "Nieuwste controle rechts; de laatste {n} controles.",
                  "en": "Newest run on the right; the last {n} runs."},
    "rule": {"nl": "Regel", "en": "Rule"},
    "legend": {"nl": "Verklaring van de tekens", "en": "Key"},
    "none": {"nl": "Nog geen complete controles.", "en": "No complete runs yet."},
    "note": {"nl": "Dit overzicht wordt na elke controle herschreven en is geen onderdeel van het bewijs.",
             "en": "This overview is rewritten after every run and is not part of the evidence."},
    "verdict_pass": {"nl": "in orde", "en": "compliant"},
    "verdict_fail": {"nl": "niet in orde", "en": "not compliant"},
    "verdict_error": {"nl": "onvolledig", "en": "incomplete"},
    "verdict_?": {"nl": "onbekend", "en": "unknown"},
    "not_run": {"nl": "niet beoordeeld in deze controle", "en": "not judged in this run"},
}


def page_labels(lang: Lang) -> dict[str, str]:
    """This page's labels plus the report's status and severity words."""
    return {**labels(lang), **{k: v[lang] for k, v in LABELS.items()}}


def when(started_at: str | None, lang: Lang, short: bool = False) -> str:
    """A run's start as a date people read: '28 november 2026 02:15' (short: '28-11'); '' when unknown."""
    if not started_at:
        return ""
    try:
        moment = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return started_at
    if short:
        return f"{moment.day:02d}-{moment.month:02d}"
    return f"{moment.day} {MONTHS[lang][moment.month - 1]} {moment.year} {moment:%H:%M}"


class RunSummary(Frozen):
    """One run in a tenant's history."""

    run_id: str
    verdict: str
    counts: dict[str, int]
    started_at: str | None = None
    regressions: int | None = None


def summarise(run: Path) -> RunSummary:
    """Verdict and counts from findings.json (verdict from the manifest), regressions from drift.json."""
    manifest = _load(run / MANIFEST)
    findings = _load(run / "findings.json")
    raw = findings.get("counts")
    counts: dict[str, Any] = raw if isinstance(raw, dict) else {}
    regressions: int | None = None
    drift = _load(run / "drift.json")
    if drift:
        from m365audit.drift.nights import DriftReport

        try:
            regressions = len(DriftReport.model_validate(drift).regressions)
        except ValueError:
            regressions = None
    return RunSummary(run_id=run.name, verdict=str(manifest.get("verdict") or findings.get("verdict") or "?"),
                      counts={s: int(counts.get(s, 0)) for s in STATUSES}, started_at=manifest.get("started_at"),
                      regressions=regressions)


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def tenant_history(tenant_dir: Path) -> list[RunSummary]:
    """Every complete run of a tenant, oldest first."""
    return [summarise(r) for r in runs(tenant_dir)]


def tenant_dirs(reports: Path) -> list[Path]:
    """Tenant folders that hold at least one complete run."""
    return sorted(p for p in reports.iterdir() if p.is_dir() and runs(p)) if reports.is_dir() else []


def resolve_tenant(reports: Path, tenant: str | None) -> list[Path]:
    """The tenant folder named (by id, or by display name in its runs), or every tenant when none is named."""
    found = tenant_dirs(reports)
    if tenant is None:
        return found
    return [find_tenant(reports, tenant)]  # an id, a verified domain or a display name; else exit 2


def chart(history: list[RunSummary]) -> dict[str, Any]:
    """Polyline points and markers for the SVG trend of fail and error counts."""
    top = max([1] + [h.counts["fail"] for h in history] + [h.counts["error"] for h in history])
    step = (CHART_W - 2 * PAD) / max(1, len(history) - 1)

    def xy(i: int, value: int) -> tuple[float, float]:
        return round(PAD + i * step, 1), round(CHART_H - PAD - value * (CHART_H - 2 * PAD) / top, 1)

    series = {}
    for status in ("fail", "error"):
        pts = [(*xy(i, h.counts[status]), h) for i, h in enumerate(history)]
        series[status] = {"points": " ".join(f"{x},{y}" for x, y, _ in pts), "markers": pts}
    every = max(1, -(-len(history) // 8))  # at most 8 date labels under the axis
    dates = [(xy(i, 0)[0], when(h.started_at, "en", short=True) or h.run_id[4:8])
             for i, h in enumerate(history) if i % every == 0 or i == len(history) - 1]
    return {"w": CHART_W, "h": CHART_H, "pad": PAD, "top": top, "series": series,
            "top_y": xy(0, top)[1], "base_y": xy(0, 0)[1], "dates": dates}


def tenant_name(tenant_dir: Path) -> str:
    """The tenant's display name as its newest run recorded it ('' when unknown)."""
    found = runs(tenant_dir)
    return str(_load(found[-1] / MANIFEST).get("tenant_name") or "") if found else ""


def rule_statuses(run: Path) -> dict[str, str]:
    """rule id -> status of one run, from its findings.json (empty when unreadable)."""
    found = _load(run / "findings.json").get("findings")
    return {str(f["rule_id"]): str(f.get("status")) for f in found if isinstance(f, dict) and "rule_id" in f} \
        if isinstance(found, list) else {}


def grid(tenant_dir: Path, history: list[RunSummary], lang: Lang) -> dict[str, Any]:
    """The rules × nights grid of the newest GRID_NIGHTS runs: worst rules first, each cell a status or None."""
    nights = history[-GRID_NIGHTS:]
    columns = [rule_statuses(tenant_dir / h.run_id) for h in nights]
    titles: dict[str, str] = {}
    for h in nights[-1:]:
        for f in _load(tenant_dir / h.run_id / "findings.json").get("findings") or []:
            if isinstance(f, dict) and isinstance(f.get("i18n"), dict):
                titles[str(f.get("rule_id"))] = str(f["i18n"].get("title", {}).get(lang, ""))
    order = {s: i for i, s in enumerate(("fail", "error", "waived", "manual", "pass"))}
    rules = sorted({r for c in columns for r in c},
                   key=lambda r: (order.get(columns[-1].get(r, ""), 9) if columns else 9, r))
    return {"nights": [{"run_id": h.run_id, "date": when(h.started_at, lang, short=True) or h.run_id[:8]}
                       for h in nights],
            "rows": [{"rule_id": r, "title": titles.get(r, ""), "cells": [c.get(r) for c in columns]}
                     for r in rules],
            "symbol": SYMBOL}


def render_index(tenant_dir: Path, lang: Lang) -> str:
    history = tenant_history(tenant_dir)
    name = tenant_name(tenant_dir)
    dates = {h.run_id: when(h.started_at, lang) for h in history}
    short = {h.run_id: when(h.started_at, lang, short=True) for h in history}
    return template_environment().get_template("history.html.j2").render(
        lang=lang, L=page_labels(lang), tenant_id=tenant_dir.name, tenant_name=name, dates=dates, short=short,
        runs=list(reversed(history)), chart=chart(history) if history else None,
        grid=grid(tenant_dir, history, lang) if history else None, grid_nights=GRID_NIGHTS)


def write_index(tenant_dir: Path, lang: Lang) -> Path:
    """Rewrite reports/<tenant>/index.html atomically (a reader never sees half a page)."""
    target = tenant_dir / INDEX
    tmp = tenant_dir / f".{INDEX}.{os.getpid()}.tmp"
    tmp.write_text(render_index(tenant_dir, lang), encoding="utf-8")
    os.replace(tmp, target)
    return target


def refresh_index(tenant_dir: Path, lang: Lang) -> str | None:
    """write_index for the runner: a failure is a warning, never a failed audit."""
    try:
        write_index(tenant_dir, lang)
    except OSError as exc:
        return f"could not rewrite {tenant_dir / INDEX}: {exc}"
    return None
