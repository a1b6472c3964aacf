"""Run folders under attack and interruption: foreign runs in a chain, outputs inside sealed runs, killed prunes."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.cli import cli
from m365audit.evidence import MANIFEST, RunFolder, new_run_id, verify_chain
from tests.conftest import FIXED_NOW, TENANTS

TENANT = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-8888-7777-6666-555555555555"


def make_run(reports: Path, when: datetime, tenant: str = TENANT, files: int = 3) -> Path:
    """A small but real run: RunFolder writes, hashes, chains, seals and renames it into place."""
    folder = RunFolder(reports, new_run_id(when), when)
    for n in range(files):
        folder.write(f"exchanges/{n:05d}-source.json", json.dumps({"n": n, "at": when.isoformat()}).encode())
    folder.write("findings.json", b'{"findings": []}\n')
    return folder.finalise(tenant, {"schema_version": 1, "tenant_id": tenant, "started_at": when.isoformat()})


def history(reports: Path, nights: int = 5, tenant: str = TENANT) -> Path:
    """nights runs, one per ten days, the newest at FIXED_NOW; returns the tenant folder."""
    for n in reversed(range(nights)):
        make_run(reports, FIXED_NOW - timedelta(days=10 * n), tenant)
    return reports / tenant


# --------------------------------------------------------------------------- verify --chain: whose run is it


def test_a_run_of_another_tenant_in_a_tenant_folder_is_reported(tmp_path: Path) -> None:
    mine = history(tmp_path / "reports", nights=1)
    assert all(r.ok for r in verify_chain(mine))
    theirs = make_run(tmp_path / "elsewhere", FIXED_NOW - timedelta(days=30), OTHER)
    shutil.move(str(theirs), mine / theirs.name)  # an older first run of another tenant, chain-wise plausible
    reports = {r.run.name: r.problems for r in verify_chain(mine)}
    assert reports[theirs.name] == [f"tenant: the manifest belongs to tenant {OTHER}, not to {TENANT} "
                                    "(a run of another tenant was copied or moved here)"]
    result = CliRunner().invoke(cli, ["verify", "--chain", str(mine)])
    assert result.exit_code == 1 and "belongs to tenant" in result.output


def test_a_tenant_folder_holding_only_a_foreign_run_is_not_intact(tmp_path: Path) -> None:
    theirs = make_run(tmp_path / "elsewhere", FIXED_NOW, OTHER)
    planted = tmp_path / "reports" / TENANT
    planted.mkdir(parents=True)
    shutil.copytree(theirs, planted / theirs.name)
    assert CliRunner().invoke(cli, ["verify", str(planted / theirs.name)]).exit_code == 0, "the run itself is intact"
    result = CliRunner().invoke(cli, ["verify", "--chain", str(planted)])
    assert result.exit_code == 1 and f"belongs to tenant {OTHER}" in result.output


def test_a_manifest_without_tenant_id_fails_the_chain(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    folder = RunFolder(reports, new_run_id(FIXED_NOW), FIXED_NOW)
    folder.write("findings.json", b"{}")
    run = folder.finalise(TENANT, {"schema_version": 1})
    [report] = verify_chain(run.parent)
    assert report.problems == [f"tenant: the manifest names no tenant, so it cannot be shown to belong to {TENANT}"]
    assert (run / MANIFEST).is_file()


# --------------------------------------------------------------------------- evaluate --output


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One audit of the example tenant (replayed), sealed; tests copy it before touching it."""
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path_factory.mktemp("reports"),
                                                replay=TENANTS / "gemeente-voorbeeld", now=FIXED_NOW)))
    return result.run_dir


@pytest.mark.parametrize("inside", [".", "reeval", "exchanges/new", "policy/pack/x/y", "../20261128T021500Z-9"])
def test_evaluate_output_inside_a_sealed_run_is_refused_before_anything_is_written(
        real_run: Path, tmp_path: Path, inside: str) -> None:
    tenant = tmp_path / "reports" / real_run.parent.name
    run = tenant / real_run.name
    shutil.copytree(real_run, run)
    before = sorted(p.relative_to(tenant).as_posix() for p in tenant.rglob("*"))
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--output", str(run / inside)])
    assert result.exit_code == 2, result.output
    assert "Hint:" in result.output
    assert "inside the sealed run" in result.output or "named like a run" in result.output
    assert sorted(p.relative_to(tenant).as_posix() for p in tenant.rglob("*")) == before
    assert all(r.ok for r in verify_chain(tenant))


def test_evaluate_output_through_a_symlink_into_a_run_is_refused(real_run: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(real_run, target_is_directory=True)
    result = CliRunner().invoke(cli, ["evaluate", str(real_run), "--output", str(tmp_path / "link" / "again")])
    assert result.exit_code == 2 and not (real_run / "again").exists()


def test_evaluate_output_outside_the_runs_is_written(real_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["evaluate", str(real_run), "--output", str(tmp_path / "evaluations" / "today")])
    assert result.exit_code in (0, 1, 3), result.output
    assert (tmp_path / "evaluations" / "today" / "report.html").is_file()
