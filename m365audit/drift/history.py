"""A tenant's runs over time: verdict counts per run and reports/<tenant>/index.html with an inline SVG trend."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from m365audit.evidence import MANIFEST, find_tenant, runs
from m365audit.models import Frozen, Lang
from m365audit.report import template_environment

INDEX = "index.html"
CHART_W, CHART_H, PAD = 640, 180, 28
STATUSES = ("pass", "fail", "error", "waived", "manual")

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"nl": "Runs van", "en": "Runs of"},
    "chart": {"nl": "Falende en foute regels per run", "en": "Failing and erroring rules per run"},
    "run": {"nl": "Run", "en": "Run"},
    "verdict": {"nl": "Oordeel", "en": "Verdict"},
    "regressions": {"nl": "Verslechterd", "en": "Regressions"},
    "fail": {"nl": "voldoet niet", "en": "fail"},
    "error": {"nl": "fout", "en": "error"},
    "pass": {"nl": "voldoet", "en": "pass"},
    "waived": {"nl": "uitzondering", "en": "waived"},
    "manual": {"nl": "handmatig", "en": "manual"},
    "none": {"nl": "Nog geen complete runs.", "en": "No complete runs yet."},
    "note": {"nl": "Dit overzicht wordt na elke run herschreven en is geen onderdeel van het bewijs.",
             "en": "This overview is rewritten after every run and is not part of the evidence."},
}


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
    return {"w": CHART_W, "h": CHART_H, "pad": PAD, "top": top, "series": series,
            "top_y": xy(0, top)[1], "base_y": xy(0, 0)[1]}


def tenant_name(tenant_dir: Path) -> str:
    """The tenant's display name as its newest run recorded it ('' when unknown)."""
    found = runs(tenant_dir)
    return str(_load(found[-1] / MANIFEST).get("tenant_name") or "") if found else ""


def render_index(tenant_dir: Path, lang: Lang) -> str:
    history = tenant_history(tenant_dir)
    name = tenant_name(tenant_dir)
    return template_environment().get_template("history.html.j2").render(
        lang=lang, L={k: v[lang] for k, v in LABELS.items()}, tenant_id=tenant_dir.name, tenant_name=name,
        runs=list(reversed(history)), chart=chart(history) if history else None)


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
