"""Run folders under attack and interruption: foreign runs in a chain, outputs inside sealed runs, killed prunes."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from m365audit.cli import cli
from m365audit.evidence import MANIFEST, RunFolder, new_run_id, verify_chain
from tests.conftest import FIXED_NOW

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
