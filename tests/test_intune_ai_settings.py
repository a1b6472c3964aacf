"""Click to Do, agent connectors and Edge browsing with Copilot: proof passes, absence fails, unconfirmed errors."""

from __future__ import annotations

from typing import Any

import pytest

from m365audit.models import Status
from m365audit.report.hints_nl import detail_in_lang
from tests.test_checks import CATALOGS, choice, ids, intune, run, target

CTD = "device_vendor_msft_policy_config_windowsai_disableclicktodo"
CTD_USER = "user_vendor_msft_policy_config_windowsai_disableclicktodo"
AGENTS = "device_vendor_msft_policy_config_windowsai_disableagentconnectors"
REMOTE_AGENTS = "device_vendor_msft_policy_config_windowsai_disableremoteagentconnectors"
BROWSE = "device_vendor_msft_policy_config_microsoft_edgev148~policy~microsoft_edge_allowbrowsingwithcopilot"
ALLOW = "device_vendor_msft_policy_config_microsoft_edgev158~policy~microsoft_edge_copilotbrowseruseallowlist"
BLOCK = "device_vendor_msft_policy_config_microsoft_edgev158~policy~microsoft_edge_copilotbrowseruseblocklist"
CLICK = "endpoint-click-to-do-disabled"
BROWSING = "endpoint-edge-copilot-browsing-disabled"


def assigned(pid: str, *settings: dict[str, Any]) -> dict[str, Any]:
    return intune(pid, list(settings), [target("groupAssignmentTarget", "werkplekken")])


def policies(*items: dict[str, Any]) -> dict[str, Any]:
    return {"intune_policies": list(items)}


@pytest.mark.parametrize("definition", [CTD, CTD_USER])
def test_click_to_do_disabled_by_an_assigned_policy_passes(definition: str) -> None:
    out = run(CLICK, policies(assigned("p1", choice(definition, "1"))))
    assert out.status is Status.PASS
    assert ids(out) == ["p1"] and "= 1 (compliant); assigned to group werkplekken" in out.objects[0].detail


def test_click_to_do_not_configured_fails() -> None:
    assert run(CLICK, policies()).status is Status.FAIL
    other = assigned("p1", choice("device_vendor_msft_policy_config_windowsai_allowrecallenablement", "0"))
    out = run(CLICK, policies(other))
    assert out.status is Status.FAIL and out.objects == []


def test_click_to_do_enabled_fails_even_beside_a_compliant_policy() -> None:
    on = assigned("p1", choice(CTD, "0"))
    assert run(CLICK, policies(on)).status is Status.FAIL
    out = run(CLICK, policies(on, assigned("p2", choice(CTD_USER, "1"))))
    assert out.status is Status.FAIL and "without an opposite assigned policy" in out.message.en


@pytest.mark.parametrize("definition", [AGENTS, REMOTE_AGENTS])
@pytest.mark.parametrize("value", ["1", "2"])
def test_an_agent_connector_value_of_unconfirmed_meaning_errors_never_passes(definition: str, value: str) -> None:
    out = run(CLICK, policies(assigned("p1", choice(CTD, "1"), choice(definition, value))))
    assert out.status is Status.ERROR
    assert "unconfirmed" in out.message.en and "intune-settings" in out.message.en
    assert "niet vaststaat" in out.message.nl and "testapparaat" in out.message.nl
    assert out.objects[0].detail.startswith(f"{definition} = {value} (meaning unconfirmed)")
    assert "(betekenis niet bevestigd)" in detail_in_lang(out.objects[0].detail, "nl")
    # without proof of Click to Do it is still error, not a guessed fail
    assert run(CLICK, policies(assigned("p1", choice(definition, value)))).status is Status.ERROR


def test_agent_connectors_left_to_the_user_neither_prove_nor_undo_the_rule() -> None:
    neutral = assigned("p1", choice(AGENTS, "0"))
    out = run(CLICK, policies(neutral))
    assert out.status is Status.FAIL and "does not decide this rule" in out.objects[0].detail
    assert run(CLICK, policies(neutral, assigned("p2", choice(CTD, "1")))).status is Status.PASS


def test_an_unconfirmed_value_in_a_policy_that_reaches_no_one_is_no_error() -> None:
    unassigned = intune("p1", [choice(AGENTS, "2")], [])
    out = run(CLICK, policies(unassigned, assigned("p2", choice(CTD, "1"))))
    assert out.status is Status.PASS


@pytest.mark.parametrize("version", ["edgev148", "edgev160"])
def test_edge_browsing_with_copilot_disabled_passes_across_admx_versions(version: str) -> None:
    out = run(BROWSING, policies(assigned("p1", choice(BROWSE.replace("edgev148", version), "0"))))
    assert out.status is Status.PASS


def test_edge_browsing_not_configured_or_enabled_fails() -> None:
    assert run(BROWSING, policies()).status is Status.FAIL
    enabled = run(BROWSING, policies(assigned("p1", choice(BROWSE, "1"))))
    assert enabled.status is Status.FAIL and "(not compliant)" in enabled.objects[0].detail


@pytest.mark.parametrize("definition", [ALLOW, BLOCK])
def test_a_copilot_browser_use_list_of_unconfirmed_id_errors_even_beside_proof(definition: str) -> None:
    out = run(BROWSING, policies(assigned("p1", choice(BROWSE, "0"), choice(definition, "1"))))
    assert out.status is Status.ERROR
    assert [o.detail.split(" = ")[0] for o in out.objects] == [definition, BROWSE]


def test_every_unconfirmed_catalog_value_makes_its_rule_error() -> None:
    entries = [e for e in CATALOGS["intune-settings"] if e.get("unconfirmed") or e.get("confirmed") is False]
    assert {e["rule"] for e in entries} == {CLICK, BROWSING}
    for entry in entries:
        values = [u["value"] for u in entry.get("unconfirmed", [])] or [f"{entry['setting']}_1"]
        for value in values:
            setting = choice(entry["setting"], "x")
            setting["settingInstance"]["choiceSettingValue"]["value"] = value
            assert run(entry["rule"], policies(assigned("p1", setting))).status is Status.ERROR, value


@pytest.mark.parametrize("broken", [
    {"id": "0"},
    {"id": "0", "settingInstance": {"settingDefinitionId": CTD}},
    {"id": "0", "settingInstance": {"settingDefinitionId": CTD, "choiceSettingValue": ["x"]}},
    {"id": "0", "settingInstance": {"settingDefinitionId": CTD, "choiceSettingValue": {"value": None}}},
    {"id": "0", "settingInstance": {"settingDefinitionId": None, "choiceSettingValue": {"value": "x"}}},
])
def test_a_setting_that_cannot_be_read_beside_the_proof_is_error(broken: dict[str, Any]) -> None:
    out = run(CLICK, policies(assigned("p1", choice(CTD_USER, "1"), broken)))
    assert out.status is Status.ERROR
