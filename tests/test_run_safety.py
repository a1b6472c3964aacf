"""Run folders under attack and interruption: foreign runs in a chain, outputs inside sealed runs, killed prunes."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.cli import cli
from m365audit.errors import RunFolderError
from m365audit.evidence import (
    MANIFEST,
    RunFolder,
    new_run_id,
    prune_tenant,
    runs,
    verify_chain,
    verify_chain_with_ledger,
)
from m365audit.evidence import prune as prune_module
from m365audit.evidence.prune import LEDGER, TRASH, read_ledger
from tests.conftest import FIXED_NOW, ROOT, TENANTS

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


# --------------------------------------------------------------------------- prune, interrupted anywhere


class Crash(BaseException):
    """Stands for a kill: nothing in prune may catch it."""


KEEP_DAYS = 15
PRUNED = 3  # of history()'s five runs, 40, 30 and 20 days old


def copy_tenant(template: Path, where: Path) -> Path:
    where.mkdir(parents=True)
    return Path(shutil.copytree(template, where / template.name))


def finished_state(tenant: Path) -> tuple[list[str], list[str]]:
    return [r.name for r in runs(tenant)], [str(e["run_id"]) for e in read_ledger(tenant)]


def assert_finished(tenant: Path, expected: tuple[list[str], list[str]]) -> None:
    assert finished_state(tenant) == expected
    assert not (tenant / TRASH).exists() and not any(p.name.startswith(LEDGER + ".tmp") for p in tenant.iterdir())
    reports = verify_chain_with_ledger(tenant)
    assert all(r.ok and not r.notes for r in reports), [(r.run.name, r.problems, r.notes) for r in reports]
    assert prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW) == [], "idempotent: nothing left to do"
    assert finished_state(tenant) == expected


def crash_at(n: int, real: Callable[..., None]) -> Callable[..., None]:
    """fs_step that performs n steps and dies at the next one."""
    calls = 0

    def crashing(op: str, path: Path, target: Path | None = None, data: bytes = b"") -> None:
        nonlocal calls
        if calls == n:
            raise Crash(op)
        calls += 1
        real(op, path, target, data)

    return crashing


def test_prune_interrupted_at_every_step_stays_provable_and_a_rerun_finishes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template = history(tmp_path / "template")
    real = prune_module.fs_step
    steps: list[str] = []

    def counting(op: str, path: Path, target: Path | None = None, data: bytes = b"") -> None:
        steps.append(op)
        real(op, path, target, data)

    reference = copy_tenant(template, tmp_path / "reference")
    monkeypatch.setattr(prune_module, "fs_step", counting)
    assert len(prune_tenant(reference, KEEP_DAYS, now=FIXED_NOW)) == PRUNED
    expected = finished_state(reference)
    assert steps[:2] == ["write", "replace"] and steps.count("rename") == PRUNED and len(steps) > 20
    for n in range(len(steps)):
        tenant = copy_tenant(template, tmp_path / f"crash-{n}")
        monkeypatch.setattr(prune_module, "fs_step", crash_at(n, real))
        with pytest.raises(Crash):
            prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW)
        monkeypatch.setattr(prune_module, "fs_step", real)
        reports = verify_chain_with_ledger(tenant)
        assert all(r.ok for r in reports), (n, steps[n], [(r.run.name, r.problems) for r in reports])
        again = prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW)
        assert len(again) == (PRUNED if n < 2 else 0), f"step {n} ({steps[n]}): the ledger is written at step 1"
        assert_finished(tenant, expected)


def test_verify_notes_an_unfinished_prune_and_a_half_deleted_run_in_place_is_finished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = history(tmp_path / "reports")
    real = prune_module.fs_step

    def no_renames(op: str, path: Path, target: Path | None = None, data: bytes = b"") -> None:
        if op == "rename":
            raise Crash(op)
        real(op, path, target, data)

    monkeypatch.setattr(prune_module, "fs_step", no_renames)
    with pytest.raises(Crash):
        prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW)
    monkeypatch.setattr(prune_module, "fs_step", real)
    result = CliRunner().invoke(cli, ["verify", "--chain", str(tenant)])
    assert result.exit_code == 0, result.output
    assert result.output.count("note: pruned.json records this run as pruned") == PRUNED
    oldest = runs(tenant)[0]  # as an older prune that deleted in place would leave it: manifest gone, files half
    (oldest / MANIFEST).unlink()
    next(p for p in (oldest / "exchanges").iterdir()).unlink()
    prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW)
    assert len(runs(tenant)) == 5 - PRUNED and not oldest.exists()
    assert all(r.ok for r in verify_chain_with_ledger(tenant))


def test_a_rerun_never_deletes_a_run_that_is_not_the_one_recorded(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = history(tmp_path / "reports")
    real = prune_module.fs_step

    def no_renames(op: str, path: Path, target: Path | None = None, data: bytes = b"") -> None:
        if op == "rename":
            raise Crash(op)
        real(op, path, target, data)

    monkeypatch.setattr(prune_module, "fs_step", no_renames)
    with pytest.raises(Crash):
        prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW)
    monkeypatch.setattr(prune_module, "fs_step", real)
    oldest = runs(tenant)[0]
    manifest = (oldest / MANIFEST).read_text()
    (oldest / MANIFEST).write_text(manifest.replace('"schema_version": 1', '"schema_version": 2'))
    with pytest.raises(RunFolderError):
        prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW)
    assert oldest.is_dir() and len(runs(tenant)) == 5
    (tenant / TRASH).mkdir(exist_ok=True)
    (tenant / TRASH / "not-recorded").mkdir()
    with pytest.raises(RunFolderError):
        prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW)
    assert (tenant / TRASH / "not-recorded").is_dir()


KILLER = """
import os, signal, sys
from datetime import datetime
from pathlib import Path

import m365audit.evidence.prune as prune

real, count = prune.fs_step, 0


def step(op, path, target=None, data=b""):
    global count
    if count == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
    count += 1
    real(op, path, target, data)


prune.fs_step = step
prune.prune_tenant(Path(sys.argv[1]), int(sys.argv[4]), now=datetime.fromisoformat(sys.argv[2]))
"""


@pytest.mark.parametrize("kill_at", [1, 2, 6])  # ledger half written; ledger written, nothing moved; mid-deletion
def test_prune_killed_with_sigkill_is_finished_by_the_next_prune(kill_at: int, tmp_path: Path) -> None:
    tenant = history(tmp_path / "reports")
    killed = subprocess.run([sys.executable, "-c", KILLER, str(tenant), FIXED_NOW.isoformat(), str(kill_at),
                             str(KEEP_DAYS)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(runs(tenant)) >= 5 - (1 if kill_at > 2 else 0)
    assert all(r.ok for r in verify_chain_with_ledger(tenant))
    keep = KEEP_DAYS + max(0, (date.today() - FIXED_NOW.date()).days)  # the CLI prunes as of today
    result = CliRunner().invoke(cli, ["prune", "--keep-days", str(keep), "--reports", str(tenant.parent)])
    assert result.exit_code == 0, result.output  # the killed prune's lock went with its process
    assert len(runs(tenant)) == 5 - PRUNED and len(read_ledger(tenant)) == PRUNED
    verified = CliRunner().invoke(cli, ["verify", "--chain", str(tenant)])
    assert verified.exit_code == 0 and "note:" not in verified.output, verified.output


def test_prune_removes_a_linked_run_without_touching_what_it_links_to(tmp_path: Path) -> None:
    tenant = history(tmp_path / "reports")
    oldest = runs(tenant)[0]
    target = tmp_path / "elsewhere" / oldest.name
    target.parent.mkdir()
    shutil.move(str(oldest), target)
    oldest.symlink_to(target, target_is_directory=True)
    assert len(prune_tenant(tenant, KEEP_DAYS, now=FIXED_NOW)) == PRUNED
    assert not oldest.is_symlink() and (target / MANIFEST).is_file() and len(list(target.rglob("*"))) > 3
    assert all(r.ok for r in verify_chain_with_ledger(tenant))
