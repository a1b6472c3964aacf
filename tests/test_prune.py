"""prune: old runs go, the newest stays, pruned.json records each removal, and verify --chain still holds."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.cli import cli
from m365audit.errors import UsageError
from m365audit.evidence import VerifyReport, prune_tenant, runs, verify_chain_with_ledger
from m365audit.evidence.prune import LEDGER, read_ledger
from tests.conftest import FIXED_NOW, TENANTS

DAYS = (40, 30, 20, 10, 0)


def nightly(reports: Path) -> Path:
    """Five runs of the example tenant, 40, 30, 20, 10 and 0 days before FIXED_NOW."""
    for days in DAYS:
        asyncio.run(run_audit(AuditOptions(reports=reports, replay=TENANTS / "gemeente-voorbeeld",
                                           now=FIXED_NOW - timedelta(days=days))))
    [tenant] = [p for p in reports.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return tenant


def ok(reports: list[VerifyReport]) -> bool:
    return all(r.ok for r in reports)


def test_prune_keeps_young_runs_and_records_the_old_ones(tmp_path: Path) -> None:
    tenant = nightly(tmp_path)
    before = runs(tenant)
    removed = prune_tenant(tenant, keep_days=15, now=FIXED_NOW)
    assert [r.run_id for r in removed] == [r.name for r in before[:3]]
    assert [r.name for r in runs(tenant)] == [r.name for r in before[3:]]
    ledger = read_ledger(tenant)
    assert [e["run_id"] for e in ledger] == [r.run_id for r in removed]
    assert all(len(e["manifest_sha256"]) == 64 and e["pruned_at"] for e in ledger)
    assert ok(verify_chain_with_ledger(tenant))
    again = prune_tenant(tenant, keep_days=5, now=FIXED_NOW)
    assert [r.run_id for r in again] == [before[3].name]
    assert len(read_ledger(tenant)) == 4 and ok(verify_chain_with_ledger(tenant)), "a second prune extends the chain"


def test_the_newest_run_is_never_pruned(tmp_path: Path) -> None:
    tenant = nightly(tmp_path)
    prune_tenant(tenant, keep_days=1, now=FIXED_NOW + timedelta(days=400))
    assert [r.name for r in runs(tenant)] == [runs(tenant)[-1].name] and len(runs(tenant)) == 1
    assert ok(verify_chain_with_ledger(tenant))


def test_dry_run_removes_nothing(tmp_path: Path) -> None:
    tenant = nightly(tmp_path)
    assert len(prune_tenant(tenant, keep_days=15, now=FIXED_NOW, dry_run=True)) == 3
    assert len(runs(tenant)) == 5 and not (tenant / LEDGER).exists()


def test_a_deletion_without_the_ledger_is_still_caught(tmp_path: Path) -> None:
    tenant = nightly(tmp_path)
    prune_tenant(tenant, keep_days=15, now=FIXED_NOW)
    (tenant / LEDGER).unlink()
    reports = verify_chain_with_ledger(tenant)
    assert not reports[0].ok and any("pruned.json does not record it" in p for p in reports[0].problems)


def test_a_forged_ledger_entry_is_caught(tmp_path: Path) -> None:
    tenant = nightly(tmp_path)
    prune_tenant(tenant, keep_days=15, now=FIXED_NOW)
    doc = json.loads((tenant / LEDGER).read_text())
    doc["pruned"][-1]["manifest_sha256"] = "0" * 64
    (tenant / LEDGER).write_text(json.dumps(doc))
    assert not ok(verify_chain_with_ledger(tenant))


def test_a_gap_in_the_middle_is_still_tampering(tmp_path: Path) -> None:
    import shutil

    tenant = nightly(tmp_path)
    prune_tenant(tenant, keep_days=35, now=FIXED_NOW)
    shutil.rmtree(runs(tenant)[1])
    assert not ok(verify_chain_with_ledger(tenant))


def test_prune_and_verify_from_the_command_line(tmp_path: Path) -> None:
    tenant = nightly(tmp_path / "reports")
    keep = 15 + max(0, (date.today() - FIXED_NOW.date()).days)  # the runs are dated from FIXED_NOW
    result = CliRunner().invoke(cli, ["prune", "--keep-days", str(keep), "--reports", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    assert "3 run(s) pruned" in result.output
    verified = CliRunner().invoke(cli, ["verify", "--chain", str(tenant)])
    assert verified.exit_code == 0, verified.output


def test_keep_days_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        prune_tenant(tmp_path, keep_days=0)
