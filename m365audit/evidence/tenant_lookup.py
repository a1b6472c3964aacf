"""--tenant as an operator types it: the tenant id (GUID), a verified domain or the display name of a stored tenant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from m365audit.errors import UsageError
from m365audit.evidence.files import MANIFEST, runs, safe_name
from m365audit.evidence.items import PagedItems


def stored_tenants(reports: Path) -> list[Path]:
    """Tenant folders under reports/ that hold at least one complete run."""
    if not reports.is_dir():
        return []
    return sorted(p for p in reports.iterdir() if p.is_dir() and not p.name.startswith(".") and runs(p))


def _manifest(tenant_dir: Path) -> dict[str, Any]:
    found = runs(tenant_dir)
    try:
        data = json.loads((found[-1] / MANIFEST).read_text(encoding="utf-8")) if found else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def verified_domains(tenant_dir: Path) -> list[str]:
    """The verified domains of the tenant's newest run (its organization source); [] when unreadable."""
    from m365audit.evidence.snapshot_file import read_snapshot

    found = runs(tenant_dir)
    if not found or not (found[-1] / "snapshot.json").is_file():
        return []
    try:
        source = read_snapshot(found[-1] / "snapshot.json").sources.get("organization")
    except (OSError, ValueError):
        return []
    data = source.data if source is not None and source.ok else None
    orgs = data.get("value") if isinstance(data, dict) else data
    names: list[str] = []
    for org in orgs if isinstance(orgs, list | PagedItems) else []:  # lists are paged from disk
        for domain in (org.get("verifiedDomains") or []) if isinstance(org, dict) else []:
            if isinstance(domain, dict) and isinstance(domain.get("name"), str):
                names.append(domain["name"])
    return names


def describe(tenant_dir: Path) -> str:
    """'<folder> (<display name>)' for lists of candidates."""
    name = str(_manifest(tenant_dir).get("tenant_name") or "")
    return f"{tenant_dir.name} ({name})" if name else tenant_dir.name


def find_tenant(reports: Path, value: str) -> Path:
    """The one stored tenant that `value` names; none or several is a usage error (exit 2) listing the tenants."""
    direct = reports / safe_name(value)
    if runs(direct):
        return direct
    stored = stored_tenants(reports)
    wanted = value.strip().lower()

    def by(match: Any) -> list[Path]:
        return [d for d in stored if match(d)]

    found = by(lambda d: str(_manifest(d).get("tenant_id") or "").lower() == wanted) \
        or by(lambda d: str(_manifest(d).get("tenant_name") or "").strip().lower() == wanted)
    if not found and "." in wanted:
        found = by(lambda d: wanted in {n.lower() for n in verified_domains(d)})
    if len(found) == 1:
        return found[0]
    known = ", ".join(describe(d) for d in (found or stored)) or "none"
    if found:
        raise UsageError(f"--tenant {value!r} matches {len(found)} tenants under {reports}: {known}",
                         hint="give the tenant id (the folder name) instead")
    raise UsageError(f"no runs for tenant {value!r} under {reports}",
                     hint=f"give a tenant id, a verified domain or a display name; known tenants: {known}")
