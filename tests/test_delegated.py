"""Delegated-only Copilot settings: read only with a person's sign-in; unknown encodings are error, never pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from m365audit.audit import AuditOptions, run_audit
from m365audit.audit.runner import needed_sources
from m365audit.evaluate import CHECKS, load_pack
from m365audit.evaluate.checks.base import CheckInput
from m365audit.graph import ReplayTransport
from m365audit.models import Status
from m365audit.policy import rule_params
from tests.conftest import FIXED_NOW, TENANTS, real_transport

PACK = load_pack()
RULE = PACK.rule("copilot-web-search-disabled")


def judge(value: Any, setting: str = "microsoft.copilot.allowwebsearch") -> Any:
    assert RULE is not None
    data = [{"id": setting, "value": value, "policyId": None}]
    return CHECKS["copilot_policy_setting"](CheckInput(
        rule=RULE, data={"copilot_policy_settings": data}, catalogs=PACK.catalogs,
        params=rule_params(RULE, PACK), approved_apps=[], today=date(2026, 11, 28)))


@pytest.mark.parametrize("value, status", [
    ("1", Status.PASS),   # off in Copilot and Copilot Chat
    ("0", Status.FAIL),   # off in Work mode only: still on in Copilot Chat
    ("2", Status.FAIL), (None, Status.FAIL),  # on; not configured (Microsoft's default is on)
    ("3", Status.ERROR), ("<xml/>", Status.ERROR), (0, Status.ERROR), (1, Status.ERROR)])
def test_only_listed_values_decide_and_anything_else_is_error(value: Any, status: Status) -> None:
    outcome = judge(value)
    assert outcome.status is status
    if status is Status.ERROR:
        assert "unconfirmed" in outcome.message.en and "params.yaml" in outcome.message.en


def test_a_missing_setting_is_error() -> None:
    assert judge("1", setting="microsoft.copilot.imagegeneration").status is Status.ERROR


def test_an_application_sign_in_never_asks_for_delegated_sources() -> None:
    assert "copilot_policy_settings" not in needed_sources(PACK)
    assert "copilot_policy_settings" in needed_sources(PACK, delegated=True)


def test_a_delegated_run_folder_replays_with_its_delegated_sources(
        tmp_path: Path, serve_recording: Callable[[Path], ReplayTransport]) -> None:
    tenant = TENANTS / "delegated-settings"
    serve_recording(tenant)
    first = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=tenant, now=FIXED_NOW,
                                               transport=real_transport())))
    statuses = {f.rule_id: f.status for f in first.findings}
    assert statuses["copilot-web-search-disabled"] is Status.PASS
    assert statuses["copilot-open-content-blocked"] is Status.FAIL
    again = asyncio.run(run_audit(AuditOptions(reports=tmp_path, replay=first.run_dir, now=FIXED_NOW)))
    assert {f.rule_id: f.status for f in again.findings} == statuses
    assert again.unmatched == []
