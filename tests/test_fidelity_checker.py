"""The fixture-fidelity checker itself: it finds each kind of deviation, maps every source and honours exemptions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from m365audit.collect import SOURCES
from tests.fidelity import check_body
from tests.test_fixture_fidelity import ROUTES, check_exchange, folder_failures, route_for, unmodelled

GUID = "1b7313c4-05d0-4a08-88e3-7b76c003a0a2"


def _model(module: str, name: str, package: str = "msgraph") -> Any:
    import importlib
    return getattr(importlib.import_module(f"{package}.generated.models.{module}"), name)


def _problems(body: Any, module: str, name: str, collection: bool = False, package: str = "msgraph") -> list[str]:
    return [str(d) for d in check_body(body, _model(module, name, package), collection)]


def test_each_kind_of_wrong_value_is_named_with_its_json_path() -> None:
    user = {"id": GUID, "accountEnabled": "true", "madeUp": 1, "userType": "Member",
            "assignedLicenses": [{"skuId": "not-a-guid", "disabledPlans": [GUID, 5]}],
            "assignedPlans": [{"assignedDateTime": "2026-01-01T10:00:00", "servicePlanId": GUID,
                               "capabilityStatus": "Enabled", "service": "exchange"}]}
    problems = _problems({"value": [user], "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=p2",
                          "bogus": 1}, "user", "User", collection=True)
    assert [p.split(":")[0] for p in problems] == [
        "bogus", "value[0].accountEnabled", "value[0].madeUp", "value[0].assignedLicenses[0].skuId",
        "value[0].assignedLicenses[0].disabledPlans[1]", "value[0].assignedPlans[0].assignedDateTime"]
    assert "'madeUp' is not a property of User (msgraph-sdk)" in problems[2]
    assert "UTC offset" in problems[5]


def test_enum_casing_unknown_types_and_wrong_containers_are_caught() -> None:
    policy = {"id": GUID, "state": "Enabled", "createdDateTime": "2026-11-21T9:12:36Z",
              "conditions": {"clientAppTypes": ["all", "Browser"], "users": "All"},
              "grantControls": {"@odata.type": "#microsoft.graph.madeUpControls", "operator": "OR"}}
    problems = _problems(policy, "conditional_access_policy", "ConditionalAccessPolicy")
    joined = "\n".join(problems)
    assert "state: \"Enabled\" is not a value of ConditionalAccessPolicyState (Graph writes 'enabled')" in joined
    assert "conditions.clientAppTypes[1]: \"Browser\" is not a value" in joined
    assert "conditions.users: an object expected" in joined
    assert 'grantControls["@odata.type"]: @odata.type' in joined
    assert "createdDateTime: an ISO 8601 date and time expected" in joined
    assert len(problems) == 5, joined


def test_a_clean_body_has_no_deviations_and_nulls_are_allowed() -> None:
    body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "@odata.count": 1, "value": [
        {"id": GUID, "displayName": None, "accountEnabled": True, "assignedLicenses": [],
         "assignedPlans": [{"assignedDateTime": "2026-01-01T10:00:00Z", "capabilityStatus": "Deleted",
                            "service": "exchange", "servicePlanId": GUID}]}]}
    assert _problems(body, "user", "User", collection=True) == []


def test_audit_data_is_open_but_the_audit_record_around_it_is_not() -> None:
    record = {"id": GUID, "createdDateTime": "2026-11-21T09:12:36Z", "auditLogRecordType": "CopilotInteraction",
              "userType": "Regular", "operation": "CopilotInteraction", "creationTime": "2026-11-21T09:12:36Z",
              "auditData": {"@odata.type": "#microsoft.graph.security.copilotInteractionAuditRecord",
                            "RecordType": 261, "CreationTime": "2026-11-21T09:12:36", "CopilotEventData": {}}}
    problems = _problems(record, "security.audit_log_record", "AuditLogRecord")
    assert problems == ["creationTime: 'creationTime' is not a property of AuditLogRecord (msgraph-sdk)"]
    record.pop("creationTime")
    record["auditLogRecordType"] = "copilotInteraction"
    assert _problems(record, "security.audit_log_record", "AuditLogRecord") == [
        "auditLogRecordType: \"copilotInteraction\" is not a value of AuditLogRecordType "
        "(Graph writes 'CopilotInteraction')"]


def test_beta_bodies_go_through_the_beta_models_with_nested_settings() -> None:
    child = {"@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
             "settingDefinitionId": "x_child", "choiceSettingValue": {"value": 1, "children": []}}
    instance = "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance"
    policy = {"id": GUID, "platforms": "Windows10", "technologies": "mdm,bogus", "settings": [{
        "id": "0", "settingInstance": {"@odata.type": instance, "settingDefinitionId": "x", "foo": 1,
        "choiceSettingValue": {"value": "x_1", "children": [child]}}}]}
    problems = _problems({"value": [policy]}, "device_management_configuration_policy",
                         "DeviceManagementConfigurationPolicy", collection=True, package="msgraph_beta")
    assert [p.split(":")[0] for p in problems] == [
        "value[0].platforms[0]", "value[0].technologies[1]", "value[0].settings[0].settingInstance.foo",
        "value[0].settings[0].settingInstance.choiceSettingValue.children[0].choiceSettingValue.value"]
    assert "(msgraph-beta-sdk)" in problems[2]


def _exchange(folder: Path, name: str, url: str, body: Any = None, method: str = "GET", status: int = 200,
              **response: Any) -> Path:
    (folder / "exchanges").mkdir(parents=True, exist_ok=True)
    resp: dict[str, Any] = {"status": status, **response}
    if body is not None:
        resp["body"] = body
    path = folder / "exchanges" / name
    path.write_text(json.dumps({"request": {"method": method, "url": url}, "response": resp}), encoding="utf-8")
    return path


def test_an_unmapped_url_fails_with_add_a_mapping_in_v1_and_in_beta(tmp_path: Path) -> None:
    for version in ("v1.0", "beta"):
        verdict = check_exchange(_exchange(tmp_path, f"{version}.json", f"/{version}/groups?$top=999", {"value": []}))
        assert verdict.checked and len(verdict.problems) == 1
        assert f"GET /{version}/groups?$top=999 maps to no msgraph model: add a mapping" in verdict.problems[0]


def test_non_json_errors_and_counts_are_told_apart(tmp_path: Path) -> None:
    csv = _exchange(tmp_path, "a.json", "/v1.0/copilot/reports/x(period='D30')", status=200,
                    headers={"Content-Type": "application/octet-stream"}, body_text="Report Refresh Date\n")
    html = _exchange(tmp_path, "b.json", "/v1.0/users", status=200, headers={"Content-Type": "text/html"},
                     body_text="<html>gateway</html>")
    refused = _exchange(tmp_path, "c.json", "/v1.0/groups", {"error": {"code": "Forbidden"}}, status=403)
    count = _exchange(tmp_path, "d.json", "/v1.0/users/$count", 31)
    bad_count = _exchange(tmp_path, "e.json", "/v1.0/users/$count", "31")
    assert [check_exchange(f).checked for f in (csv, html, refused)] == [False, False, False]
    assert check_exchange(count).problems == ()
    assert check_exchange(bad_count).problems == ("$: a /$count answer is a whole number, got '31'",)


def test_body_file_and_json_body_text_are_checked_like_inline_bodies(tmp_path: Path) -> None:
    (tmp_path / "exchanges").mkdir()
    (tmp_path / "exchanges" / "00001.body").write_bytes(b'{"value": [{"id": "x", "skuId": "nope"}]}')
    from_file = _exchange(tmp_path, "00001.json", "/v1.0/subscribedSkus", status=200,
                          headers={"Content-Type": "application/json; charset=utf-8"}, body_file="00001.body")
    truncated = _exchange(tmp_path, "00002.json", "/v1.0/subscribedSkus", status=200,
                          headers={"Content-Type": "application/json"}, body_text='{"value": [{"id": "x')
    assert check_exchange(from_file).problems == ('value[0].skuId: a GUID expected, got "nope" '
                                                  "(badly formed hexadecimal UUID string)",)
    assert check_exchange(truncated).problems[0].startswith("the body is not valid JSON")


def test_exemptions_need_a_reason_a_real_deviation_and_an_existing_file(tmp_path: Path) -> None:
    _exchange(tmp_path, "010-bad.json", "/v1.0/subscribedSkus", {"value": [{"skuId": "nope"}]})
    _exchange(tmp_path, "020-good.json", "/v1.0/organization", {"value": [{"id": GUID}]})
    _exchange(tmp_path, "030-bad.json", "/v1.0/subscribedSkus", {"value": [{"skuId": "nope"}]})
    (tmp_path / "tenant.yaml").write_text(
        "fidelity_exempt:\n  010-bad.json: deliberately malformed\n  020-good.json: hostile\n"
        "  030-bad.json: ''\n  040-gone.json: removed\n", encoding="utf-8")
    checked, failures = folder_failures(tmp_path)
    assert checked == 3
    assert failures == [
        "020-good.json: exempted (hostile) but parses cleanly: drop the exemption",
        "030-bad.json: fidelity_exempt needs a reason",
        "fidelity_exempt names 040-gone.json, which is not an exchange file"]


def test_every_json_source_url_maps_to_a_model() -> None:
    for source in SOURCES.values():
        if source.shape == "csv":
            continue
        path = re.sub(r"\{[^}]+\}", GUID, source.url.split("?")[0]).lower()
        assert route_for("GET", path) or route_for("POST", path) or unmodelled("GET", path), \
            f"{source.key}: {source.url} has no ROUTES (or UNMODELLED) entry"


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r[0]} {r[1]} {r[2]}" for r in ROUTES])
def test_every_route_names_a_model_its_sdk_has(route: tuple[Any, ...]) -> None:
    model = route[3]()
    assert hasattr(model, "create_from_discriminator_value") and hasattr(model(), "get_field_deserializers")


def test_directory_objects_take_extension_attributes_and_nothing_else_undeclared() -> None:
    user = {"id": GUID, "extension_8f3c2a715d4e4b9aa6c12e7f0b9d4c53_employeeCode": "A-17", "createdDate": "2026"}
    assert _problems(user, "user", "User") == ["createdDate: 'createdDate' is not a property of User (msgraph-sdk)"]
    principal = {"id": GUID, "accountEnabled": True, "createdDateTime": "2019-09-17T19:10:35Z"}
    assert _problems(principal, "agent_identity_blueprint_principal", "AgentIdentityBlueprintPrincipal") == [
        "createdDateTime: 'createdDateTime' is not a property of AgentIdentityBlueprintPrincipal (msgraph-sdk)"]


def test_a_documented_url_without_a_model_is_checked_as_a_collection_page(tmp_path: Path) -> None:
    url = "/beta/copilot/costManagement/usageReports/serviceUsageRecords"
    page = _exchange(tmp_path, "a.json", url, {"value": [{"serviceId": "workIQ", "consumedQuantity": 0.0}]})
    not_page = _exchange(tmp_path, "b.json", url, [{"serviceId": "workIQ"}])
    assert check_exchange(page).problems == ()
    assert check_exchange(not_page).problems == (
        "$: a collection page (an object with a 'value' list of objects) expected",)


def test_a_key_written_twice_is_caught_although_json_loads_keeps_the_last(tmp_path: Path) -> None:
    (tmp_path / "exchanges").mkdir()
    body = '{"value": [{"id": "x", "accountEnabled": false, "accountEnabled": true}]}'
    twice = _exchange(tmp_path, "a.json", "/v1.0/users", status=200, headers={"Content-Type": "application/json"},
                      body_text=body)
    assert check_exchange(twice).problems == ("a key appears twice in one object: accountEnabled",)
