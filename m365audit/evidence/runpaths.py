"""Find a tenant's run folders: the newest, the one before a run, and the two that drift compares."""

from __future__ import annotations

from pathlib import Path

from m365audit.errors import UsageError
from m365audit.evidence.files import MANIFEST, latest_run, runs, safe_name


def previous_run(reports: Path, tenant_id: str) -> Path | None:
    """The newest complete run of a tenant: what tonight's run is compared with."""
    return latest_run(reports / safe_name(tenant_id))


def resolve_pair(reports: Path, tenant: str | None, old: str | None, new: str | None) -> tuple[Path, Path]:
    """OLD and NEW as run folders or run ids; missing ones default to the tenant's two latest runs."""
    tenant_dir = _tenant_dir(reports, tenant, [x for x in (old, new) if x])
    found = runs(tenant_dir)
    if new is not None:
        new_dir = _run_path(tenant_dir, new)
    elif old is not None:
        return _before(found, _run_path(tenant_dir, old)), _run_path(tenant_dir, old)
    else:
        if len(found) < 2:
            raise UsageError(f"{tenant_dir} holds {len(found)} complete run(s); drift needs two",
                             hint="run `m365audit audit` again tomorrow, or name two run folders")
        return found[-2], found[-1]
    return _run_path(tenant_dir, old) if old else _before(found, new_dir), new_dir


def _before(found: list[Path], run: Path) -> Path:
    names = [r.name for r in found]  # run order, where -10 comes after -9
    earlier = found[:names.index(run.name)] if run.name in names else [r for r in found if r.name < run.name]
    if not earlier:
        raise UsageError(f"no run before {run.name}", hint="name the older run as well: drift OLD_RUN NEW_RUN")
    return earlier[-1]


def _run_path(tenant_dir: Path, value: str) -> Path:
    path = Path(value)
    if (path / MANIFEST).is_file():
        return path
    if (tenant_dir / value / MANIFEST).is_file():
        return tenant_dir / value
    raise UsageError(f"{value} is not a complete run folder or a run id of {tenant_dir.name}",
                     hint="`m365audit history` lists the runs")


def _tenant_dir(reports: Path, tenant: str | None, given: list[str]) -> Path:
    if tenant:
        from m365audit.evidence.tenant_lookup import find_tenant

        return find_tenant(reports, tenant)
    for value in given:
        if (Path(value) / MANIFEST).is_file():
            return Path(value).resolve().parent
    tenants = [p for p in reports.iterdir() if runs(p)] if reports.is_dir() else []
    if len(tenants) == 1:
        return tenants[0]
    raise UsageError(f"{reports} holds runs of {len(tenants)} tenants; say which",
                     hint="use --tenant TENANT_ID or give run folders")
