"""The golden test: every fixture tenant through the real SDK stack (respx) gives exactly its expected.yaml."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from m365audit.audit import AuditOptions, run_audit
from m365audit.evaluate import load_pack
from m365audit.graph import ReplayTransport, tenant_metadata
from tests.conftest import FIXED_NOW, real_transport, tenant_dirs

TENANTS = tenant_dirs()


def local_folder(tenant: Path) -> Path | None:
    return tenant / "local" if (tenant / "local").is_dir() else None


@pytest.mark.parametrize("tenant", TENANTS, ids=[t.name for t in TENANTS])
def test_tenant_matches_expected(tenant: Path, tmp_path: Path,
                                 serve_recording: Callable[[Path], ReplayTransport]) -> None:
    replay = serve_recording(tenant)
    expected = yaml.safe_load((tenant / "expected.yaml").read_text(encoding="utf-8"))
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant, local=local_folder(tenant),
                                                now=FIXED_NOW, transport=real_transport())))
    actual = {f.rule_id: f.status.value for f in result.findings}
    assert actual == expected
    manifest = json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["mode"] == "replay" and manifest["collector"]["auth"] == "replay"
    allowed = tenant_metadata(tenant).get("unrecorded", [])
    unexplained = [u for u in replay.unmatched if not any(a in u for a in allowed)]
    assert unexplained == [], "requests nobody recorded (list them in tenant.yaml 'unrecorded' if deliberate)"


def test_every_rule_has_a_passing_and_a_failing_tenant() -> None:
    pack = load_pack()
    seen: dict[str, set[str]] = {r.id: set() for r in pack.rules}
    for tenant in TENANTS:
        for rule_id, status in yaml.safe_load((tenant / "expected.yaml").read_text(encoding="utf-8")).items():
            seen.setdefault(rule_id, set()).add(status)
    automated = [r.id for r in pack.rules if r.manual is None]
    missing = {rid: sorted({"pass", "fail"} - seen[rid]) for rid in automated if not {"pass", "fail"} <= seen[rid]}
    assert missing == {}, "rules without a tenant where they pass and one where they fail"


def test_every_expected_file_names_every_rule_of_the_pack() -> None:
    ids = {r.id for r in load_pack().rules}
    for tenant in TENANTS:
        named = set(yaml.safe_load((tenant / "expected.yaml").read_text(encoding="utf-8")))
        assert named == ids, tenant.name
