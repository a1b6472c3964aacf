"""The evidence: replayable exchanges, manifest and hash chain under tampering, atomic runs, the tenant lock."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.audit.runner import AuditResult
from m365audit.cli import cli
from m365audit.errors import RunFolderError
from m365audit.evidence import MANIFEST, RunFolder, runs, sha256_file, verify_chain, verify_run
from m365audit.evidence import lock as evidence
from m365audit.evidence.files import INCOMPLETE, LOCK, SEAL
from m365audit.evidence.lock import TenantLock
from m365audit.graph import ReplayTransport
from tests.conftest import FIXED_NOW, ROOT, TENANTS, real_transport

REPLAYED = ["gemeente-voorbeeld", "copilot-pilot", "throttled-paging", "permissions-missing", "pilot-with-waivers"]


def audit(tenant: Path, reports: Path, now: datetime = FIXED_NOW, local: Path | None = None) -> AuditResult:
    local = local or (tenant / "local" if (tenant / "local").is_dir() else None)
    return asyncio.run(run_audit(AuditOptions(reports=reports, replay=tenant, local=local, now=now)))


def findings_of(result: AuditResult) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in result.findings]


# --------------------------------------------------------------------------- the exchange store


@pytest.mark.parametrize("name", REPLAYED)
def test_a_run_folder_replays_to_the_same_findings(name: str, tmp_path: Path) -> None:
    first = audit(TENANTS / name, tmp_path / "a")
    local = TENANTS / name / "local"
    again = audit(first.run_dir, tmp_path / "b", local=local if local.is_dir() else None)
    assert findings_of(again) == findings_of(first)
    assert again.snapshot.tenant_id == first.snapshot.tenant_id
    assert again.unmatched == [], "every request of the replay was answered from the run's own evidence"
    assert len(first.findings) > 20 and (name != "permissions-missing" or first.verdict == "error")


def test_every_attempt_is_kept_with_its_exact_bytes(tmp_path: Path) -> None:
    run = audit(TENANTS / "throttled-paging", tmp_path).run_dir
    docs = {p.name: json.loads(p.read_text()) for p in sorted((run / "exchanges").glob("*.json"))}
    for name, doc in docs.items():
        body = (run / "exchanges" / doc["response"]["body_file"]).read_bytes()
        assert doc["sha256"] == hashlib.sha256(body).hexdigest(), name
        assert doc["request_id"] == doc["response"]["headers"].get("request-id"), name
        assert datetime.strptime(doc["recorded_at"], "%Y-%m-%dT%H:%M:%S.%fZ"), name
        assert doc["request"]["url"].startswith("https://graph.microsoft.com/"), name
    users = [d for d in docs.values() if d["source"] == "users"]
    throttled = [d for d in users if d["response"]["status"] == 429]
    assert len(throttled) == 1 and throttled[0]["attempt"] == 1
    retry = [d for d in users if d["request"]["url"] == throttled[0]["request"]["url"] and d is not throttled[0]]
    assert [d["response"]["status"] for d in retry] == [200] and retry[0]["attempt"] == 2
    failing = audit(TENANTS / "permissions-missing", tmp_path / "pm").run_dir
    statuses = [json.loads(p.read_text())["response"]["status"] for p in (failing / "exchanges").glob("*.json")]
    assert statuses.count(503) == 4, "the first try and the three retries of the 503 are all evidence"


# --------------------------------------------------------------------------- manifest and verify


@cache
def pristine_run() -> Path:
    """One real run, made once at collection time so every one of its files can be a test case."""
    reports = Path(tempfile.mkdtemp(prefix="m365audit-pristine-"))
    return audit(TENANTS / "gemeente-voorbeeld", reports).run_dir


def run_files() -> list[str]:
    run = pristine_run()
    return sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())


def copy_run(tmp_path: Path) -> Path:
    target = tmp_path / "tenant" / pristine_run().name
    shutil.copytree(pristine_run(), target)
    return target


def test_the_manifest_records_what_the_issue_asks_for() -> None:
    run = pristine_run()
    manifest = json.loads((run / MANIFEST).read_text())
    assert set(manifest["files"]) == set(run_files()) - {MANIFEST, SEAL}
    assert manifest["tool_version"] and manifest["tenant_id"] == "061ea7c2-cc15-418b-bfc0-9f6a7d98011c"
    assert len(manifest["policy_pack"]["digest"]) == 64 and manifest["policy_pack"]["files"]
    assert manifest["started_at"].startswith("2026-11-28T02:15") and manifest["finished_at"]
    assert manifest["previous_manifest_sha256"] is None and manifest["collector"]["auth"] == "replay"
    assert (run / SEAL).read_text() == f"{sha256_file(run / MANIFEST)}  {MANIFEST}\n", "sha256sum -c works too"
    assert verify_run(run).ok


@pytest.mark.parametrize("rel", run_files())
def test_changing_any_byte_of_any_file_is_detected(rel: str, tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    path = run / rel
    original = path.read_bytes()
    for position in sorted({0, len(original) // 2, len(original) - 1}):
        changed = bytearray(original)
        changed[position] ^= 0x01
        path.write_bytes(bytes(changed))
        problems = verify_run(run).problems
        assert problems, f"{rel} byte {position} changed unnoticed"
        assert any(rel in p or (rel in (MANIFEST, SEAL) and MANIFEST in p) for p in problems), problems
        path.write_bytes(original)
    assert verify_run(run).ok


def test_missing_and_extra_files_are_reported_and_verify_exits_1(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    body = sorted((run / "exchanges").glob("*.body"))[2]
    body.unlink()
    (run / "exchanges" / "99999-planted.json").write_text("{}")
    problems = verify_run(run).problems
    assert f"missing: exchanges/{body.name}" in problems
    assert "extra (not in the manifest): exchanges/99999-planted.json" in problems
    result = CliRunner().invoke(cli, ["verify", str(run)])
    assert result.exit_code == 1 and "TAMPERED" in result.output and body.name in result.output
    (run / SEAL).unlink()
    assert f"missing: {SEAL}" in verify_run(run).problems


def three_runs(tmp_path: Path) -> list[Path]:
    reports = tmp_path / "reports"
    made = [audit(TENANTS / "gemeente-voorbeeld", reports, FIXED_NOW + timedelta(days=n)).run_dir for n in range(3)]
    assert [r.name for r in runs(made[0].parent)] == [r.name for r in made]
    return made


def test_a_tenant_history_verifies_and_each_run_links_to_the_one_before(tmp_path: Path) -> None:
    made = three_runs(tmp_path)
    assert all(r.ok for r in verify_chain(made[0].parent))
    second = json.loads((made[1] / MANIFEST).read_text())
    assert second["previous_run_id"] == made[0].name
    assert second["previous_manifest_sha256"] == sha256_file(made[0] / MANIFEST)
    result = CliRunner().invoke(cli, ["verify", "--chain", str(made[0].parent)])
    assert result.exit_code == 0 and result.output.count("OK ") == 3


def test_editing_an_older_manifest_breaks_its_seal_and_the_next_link(tmp_path: Path) -> None:
    made = three_runs(tmp_path)
    manifest = json.loads((made[0] / MANIFEST).read_text())
    manifest["verdict"] = "pass-but-edited"
    (made[0] / MANIFEST).write_text(json.dumps(manifest, indent=2))
    reports = {r.run.name: r.problems for r in verify_chain(made[0].parent)}
    assert any("no longer matches its seal" in p for p in reports[made[0].name])
    assert reports[made[1].name] == [f"chain: the manifest of {made[0].name} changed since this run linked to it"]
    assert reports[made[2].name] == []
    # re-sealing the edited manifest does not help: the next run still remembers the old hash
    (made[0] / SEAL).write_text(f"{sha256_file(made[0] / MANIFEST)}  {MANIFEST}\n")
    assert verify_run(made[0]).ok and not verify_chain(made[0].parent)[1].ok


def test_a_deleted_middle_run_is_a_broken_link(tmp_path: Path) -> None:
    made = three_runs(tmp_path)
    shutil.rmtree(made[1])
    reports = verify_chain(made[0].parent)
    assert [r.ok for r in reports] == [True, False]
    assert reports[1].problems == [f"chain: links to {made[1].name}, but the run before it is {made[0].name} "
                                   "(a run was deleted or moved)"]
    result = CliRunner().invoke(cli, ["verify", "--chain", str(made[0].parent)])
    assert result.exit_code == 1


def test_a_deleted_first_run_and_a_run_without_manifest_are_reported(tmp_path: Path) -> None:
    made = three_runs(tmp_path)
    shutil.rmtree(made[0])
    (made[2] / MANIFEST).unlink()
    reports = {r.run.name: r.problems for r in verify_chain(made[1].parent)}
    assert reports[made[1].name] == [f"chain: the previous run {made[0].name} is missing (deleted or moved)"]
    assert reports[made[2].name] == [f"missing: {MANIFEST} (the run is incomplete, or not a run folder)"]


# --------------------------------------------------------------------------- atomic, append-only, locked


def slow_tenant(tmp_path: Path, delay_ms: int) -> Path:
    """gemeente-voorbeeld with one exchange that makes the replay wait."""
    tenant = tmp_path / "slow-tenant"
    shutil.copytree(TENANTS / "gemeente-voorbeeld", tenant)
    slow = tenant / "exchanges" / "180-external-connections.json"
    doc = json.loads(slow.read_text())
    doc["delay_ms"] = delay_ms
    slow.write_text(json.dumps(doc))
    return tenant


def start_audit(tenant: Path, reports: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "m365audit", "audit", "--replay", str(tenant), "--reports",
                             str(reports)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the audit never got that far"
        time.sleep(0.05)


TENANT_ID = "061ea7c2-cc15-418b-bfc0-9f6a7d98011c"


def test_a_run_killed_midway_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = start_audit(slow_tenant(tmp_path, 60_000), reports)
    try:
        wait_for(lambda: len(list(reports.glob(f"{INCOMPLETE}/*/exchanges/*.json"))) >= 5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert list(reports.rglob(MANIFEST)) == [], "no manifest, so nothing looks finished"
    assert runs(reports / TENANT_ID) == []
    [leftover] = list((reports / INCOMPLETE).iterdir())
    assert leftover.name.endswith(f"-{proc.pid}")
    assert [p.name for p in (reports / TENANT_ID).iterdir()] == [LOCK], "only the lock file, naming the dead pid"
    assert TenantLock(reports / TENANT_ID).holder()["pid"] == proc.pid
    result = CliRunner().invoke(cli, ["verify", "--chain", str(reports / TENANT_ID)])
    assert result.exit_code != 0 and "holds no complete runs" in result.output
    after = audit(TENANTS / "gemeente-voorbeeld", reports)  # the dead process's lock is taken over
    assert runs(reports / TENANT_ID) == [after.run_dir] and all(r.ok for r in verify_chain(reports / TENANT_ID))
    assert [w for w in after.warnings if str(leftover) in w] == [
        f"an interrupted run left {leftover} (no manifest, so it is not evidence); look at it, then remove it"]


def test_a_second_run_for_the_same_tenant_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = start_audit(slow_tenant(tmp_path, 4_000), reports)
    try:
        wait_for(lambda: TenantLock(reports / TENANT_ID).holder().get("pid") == proc.pid)
        refused = CliRunner().invoke(cli, ["audit", "--replay", str(TENANTS / "gemeente-voorbeeld"),
                                           "--reports", str(reports)])
        assert refused.exit_code == 4, refused.output
        assert f"Error: another audit of this tenant is running (process {proc.pid} on " in refused.output
        assert "Hint: wait for it to finish and run again" in refused.output
        assert [p.name for p in (reports / INCOMPLETE).iterdir()] == [p.name for p in
                                                                      (reports / INCOMPLETE).glob(f"*-{proc.pid}")]
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    [run] = runs(reports / TENANT_ID)
    assert verify_run(run).ok
    assert TenantLock(reports / TENANT_ID).holder() == {}, "the lock file is emptied on release"


def test_a_run_is_never_overwritten(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    first = audit(TENANTS / "gemeente-voorbeeld", reports).run_dir
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    second = audit(TENANTS / "gemeente-voorbeeld", reports).run_dir  # the same second: a new run id
    assert second.name == f"{first.name}-2"
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    assert all(r.ok for r in verify_chain(reports / TENANT_ID))
    folder = RunFolder(reports, "20261128T021500Z", FIXED_NOW)
    (reports / TENANT_ID / folder.run_id).mkdir()  # appears while the run is being written
    with pytest.raises(RunFolderError, match="runs are never overwritten"):
        folder.finalise(TENANT_ID, {})
    assert list((reports / TENANT_ID / folder.run_id).iterdir()) == []


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("flock", [True, False], ids=["flock", "pid-file"])
def test_a_stale_lock_from_a_dead_process_is_taken_over(flock: bool, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "HAVE_FLOCK", flock)
    tenant_dir = tmp_path / "tenant"
    tenant_dir.mkdir()
    (tenant_dir / LOCK).write_text(json.dumps({"pid": dead_pid(), "host": os.uname().nodename}))
    lock = TenantLock(tenant_dir, "20261128T021500Z")
    lock.acquire()
    assert lock.held and TenantLock(tenant_dir).holder()["pid"] == os.getpid()
    with pytest.raises(RunFolderError, match=rf"another audit of this tenant is running \(process {os.getpid()} "):
        TenantLock(tenant_dir).acquire()
    lock.release()
    again = TenantLock(tenant_dir)
    again.acquire()
    again.release()


def test_a_live_lock_holder_in_the_pid_file_fallback_is_respected(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "HAVE_FLOCK", False)
    tenant_dir = tmp_path / "tenant"
    tenant_dir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tenant_dir / LOCK).write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename, "run_id": "x"}))
        with pytest.raises(RunFolderError, match=rf"\(process {sleeper.pid} on .*, run x\); lock file"):
            TenantLock(tenant_dir).acquire(wait=0.2)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_run_holds_the_lock_from_the_start_when_the_tenant_is_known(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    reports = tmp_path / "reports"
    seen: list[dict[str, Any]] = []
    original = ReplayTransport.handle_async_request

    async def spy(self: ReplayTransport, request: Any) -> Any:
        seen.append(TenantLock(reports / TENANT_ID).holder())
        return await original(self, request)

    monkeypatch.setattr(ReplayTransport, "handle_async_request", spy)
    audit(TENANTS / "gemeente-voorbeeld", reports)
    assert seen and all(h.get("pid") == os.getpid() for h in seen), "locked before the first Graph request"


def test_reports_and_evidence_never_hold_the_token_or_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_recording: Callable[[Path], ReplayTransport]) -> None:
    from m365audit.audit import runner
    from m365audit.graph import CredentialSettings
    from tests.conftest import FakeCredential

    token, secret = "eyJ0eXAiOi.SECRET-TOKEN-VALUE-4711.sig", "client-secret-value-0815"
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    monkeypatch.setattr(runner, "build_credential", lambda *a, **k: FakeCredential(token))
    monkeypatch.setattr(runner, "AUDIT_POLL_INTERVAL", 0.0)
    serve_recording(TENANTS / "gemeente-voorbeeld")
    result = asyncio.run(run_audit(AuditOptions(
        reports=tmp_path, now=FIXED_NOW, transport=real_transport(),
        credential=CredentialSettings(method="secret", tenant_id=TENANT_ID,
                                      client_id="0e5f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"))))
    assert result.verdict == "pass", [(f.rule_id, f.message.en) for f in result.findings if f.status.value == "error"]
    for path in result.run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"SECRET-TOKEN-VALUE-4711" not in data and secret.encode() not in data, path.name
            assert b"Bearer " not in data, path.name


def test_audit_prints_the_manifest_hash_to_keep_outside_the_reports(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--replay", str(TENANTS / "gemeente-voorbeeld"), "--reports",
                                      str(tmp_path), "--lang", "en"])
    assert result.exit_code == 0, result.output
    [run] = runs(tmp_path / TENANT_ID)
    assert f"Manifest:   {sha256_file(run / MANIFEST)} (sha256; keep it outside" in result.output


def test_a_run_moved_to_another_run_id_is_reported(tmp_path: Path) -> None:
    run = copy_run(tmp_path)
    moved = run.with_name("20261127T021500Z")
    run.rename(moved)
    assert verify_run(moved).problems == [f"renamed: the manifest belongs to run {run.name}"]


def test_the_run_keeps_the_exact_policy_files_and_they_re_evaluate_to_the_same_findings(tmp_path: Path) -> None:
    from m365audit.evaluate import evaluate, load_pack
    from m365audit.models import Snapshot

    result = audit(TENANTS / "pilot-with-waivers", tmp_path)
    run = result.run_dir
    manifest = json.loads((run / MANIFEST).read_text())
    kept = load_pack(run / "policy" / "pack", run / "policy" / "local")
    assert sorted(kept.files.values()) == sorted(manifest["policy_pack"]["files"].values())
    assert {p.name for p in (run / "policy" / "local").iterdir()} == {"waivers.yaml", "attestations.yaml",
                                                                     "approved-apps.yaml"}
    snapshot = Snapshot.model_validate_json((run / "snapshot.json").read_bytes())
    again = evaluate(snapshot, kept, FIXED_NOW.date())
    assert [f.model_dump() for f in again] == [f.model_dump() for f in result.findings]
