"""m365audit record: pseudonymised fixture tenants leak no person and replay to the same rule statuses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit
from m365audit.cli import cli
from m365audit.errors import UsageError
from m365audit.graph import ReplayTransport
from m365audit.operations import pseudonymise
from m365audit.operations.record import EMAIL, read_exchanges
from tests.conftest import FIXED_NOW, TENANTS, FakeCredential, tenant_dirs

PLAIN = [t for t in tenant_dirs() if not (t / "local").is_dir()]


def people_of(tenant: Path) -> set[str]:
    """Every id, address and name of a person (and the tenant's id and domains) in a recording."""
    found: set[str] = set()
    for ex in read_exchanges(tenant):
        url = str(ex.request["url"]).split("?")[0]
        if not ex.is_json:
            found.update(m.group(0).lower() for m in EMAIL.finditer(str(ex.body)))
            continue
        values = ex.body.get("value") if isinstance(ex.body, dict) else None
        for item in values if isinstance(values, list) else []:
            if not isinstance(item, dict):
                continue
            if url.endswith("/users"):
                found.update(str(item[k]).lower() for k in ("id", "userPrincipalName", "displayName") if item.get(k))
            if url.endswith("/organization"):
                found.add(item["id"].lower())
                found.update(d["name"].lower() for d in item.get("verifiedDomains", []))
            if item.get("principalType") == "User":
                found.update(str(item[k]).lower() for k in ("principalId", "principalDisplayName") if item.get(k))
    locals_ = {f.split("@")[0].split("#")[0] for f in found if "@" in f}
    found.update(x for x in locals_ if ("." in x or "_" in x) and len(x) >= 5)
    return {f for f in found if len(f) >= 4}


def all_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8").lower() for p in sorted(folder.rglob("*")) if p.is_file())


class _RecordedAt(datetime):
    """The clock of a live record in a test: FIXED_NOW, the time its replay is judged at."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _RecordedAt:
        return cls.fromtimestamp(FIXED_NOW.timestamp(), tz)


def statuses(tenant: Path, reports: Path) -> dict[str, str]:
    result = asyncio.run(run_audit(AuditOptions(reports=reports, replay=tenant, now=FIXED_NOW)))
    return {f.rule_id: f.status.value for f in result.findings}


@pytest.mark.parametrize("tenant", PLAIN, ids=[t.name for t in PLAIN])
def test_no_person_survives_and_the_verdicts_do(tenant: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    summary = pseudonymise(tenant, out, salt="test")
    people = people_of(tenant)
    assert people, "the fixture names people, so the test can fail"
    text = all_text(out)
    survivors = sorted(p for p in people if p in text)
    assert survivors == []
    assert statuses(out, tmp_path / "a") == statuses(tenant, tmp_path / "b")
    assert summary.tenant_id and yaml.safe_load((out / "tenant.yaml").read_text())["tenant_id"] == summary.tenant_id


def test_the_same_person_gets_the_same_pseudonym_everywhere(tmp_path: Path) -> None:
    tenant = TENANTS / "copilot-pilot"
    out = tmp_path / "shared"
    pseudonymise(tenant, out, salt="x")
    users = [u for f in sorted((out / "exchanges").glob("*users*.json"))
             for u in json.loads(f.read_text())["response"]["body"]["value"]]
    first = users[-1]
    elsewhere = all_text(out / "exchanges").count(first["id"].lower())
    assert elsewhere >= 1
    member = next(u for u in users if "#EXT#" not in u["userPrincipalName"] and " " in u["displayName"])
    local = member["userPrincipalName"].split("@")[0]
    assert local.split(".")[-1] in member["displayName"].lower().replace(" ", ""), "address follows the name"
    guests = [u for u in users if "#EXT#" in u["userPrincipalName"]]
    assert all(u["userPrincipalName"].endswith(".onmicrosoft.com") for u in guests)
    again = tmp_path / "again"
    pseudonymise(tenant, again, salt="x")
    assert all_text(again) == all_text(out), "same salt, same pseudonyms: deterministic"


def test_microsoft_ids_are_kept(tmp_path: Path) -> None:
    tenant = TENANTS / "gemeente-voorbeeld"
    out = tmp_path / "shared"
    pseudonymise(tenant, out, salt="x")
    text = all_text(out)
    assert "00000003-0000-0000-c000-000000000000" in text  # the Graph app id
    skus = json.loads((tenant / "exchanges" / "020-subscribed-skus.json").read_text())["response"]["body"]["value"]
    assert all(s["skuId"] in text for s in skus)


def test_a_non_empty_output_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("")
    with pytest.raises(UsageError, match="not empty"):
        pseudonymise(TENANTS / "gemeente-voorbeeld", tmp_path / "x")


def test_record_from_a_run_folder(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    asyncio.run(run_audit(AuditOptions(reports=reports, replay=TENANTS / "gemeente-voorbeeld", now=FIXED_NOW)))
    [run] = [p for p in reports.glob("*/2*") if p.is_dir()]
    result = CliRunner().invoke(cli, ["record", "--from", str(run), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "pseudonymised" in result.output
    assert not any(p in all_text(tmp_path / "out") for p in people_of(TENANTS / "gemeente-voorbeeld"))
    assert statuses(tmp_path / "out", tmp_path / "r2") == statuses(run, tmp_path / "r3")


def test_a_live_record_keeps_no_real_run_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 serve_recording: Callable[[Path], ReplayTransport]) -> None:
    import tempfile

    from m365audit.audit import runner

    tenant = TENANTS / "gemeente-voorbeeld"
    serve_recording(tenant)  # Graph answers from the recording through respx; no network
    monkeypatch.setattr(runner, "build_credential", lambda *a, **k: FakeCredential())
    monkeypatch.setattr(runner, "AUDIT_POLL_INTERVAL", 0.0)
    monkeypatch.setattr(runner, "datetime", _RecordedAt)  # the cost report is asked per day: replay at that time
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = CliRunner().invoke(cli, ["record", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert not any(p in all_text(tmp_path / "out") for p in people_of(tenant))
    assert list(scratch.iterdir()) == [], "the real run was written to a temporary folder and removed"
    assert statuses(tmp_path / "out", tmp_path / "r") == statuses(tenant, tmp_path / "r0")
