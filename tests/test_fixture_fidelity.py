"""Fixture fidelity: every recorded 2xx JSON body of a Graph source parses through msgraph-sdk's own models.

kiota's JSON parse node, made strict (tests/fidelity.py), must find no property outside the schema and no value
that fails to convert. Each URL maps to its msgraph model in ROUTES; a v1.0 URL that maps to nothing fails
("add a mapping"), so new sources and fixtures are held to the same standard. A fixture that is deliberately
malformed or hostile is exempted file by file in its tenant.yaml under `fidelity_exempt`, with a reason.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from m365audit.graph.replay import Recorded, load_exchange
from tests.fidelity import Deviation, check_body

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent for p in [*ROOT.glob("fixtures/tenants/*/exchanges"),
                                    *ROOT.glob("fixtures/nights/*/*/exchanges")])


def _model(module: str, name: str, package: str = "msgraph") -> Callable[[], Any]:
    def load() -> Any:
        return getattr(importlib.import_module(f"{package}.generated.models.{module}"), name)
    return load


def _beta(module: str, name: str) -> Callable[[], Any]:
    return _model(module, name, "msgraph_beta")


_ID = r"[^/()]+"
_SP = rf"/serviceprincipals(?:/{_ID}|\(appid='[^']*'\))"  # an object id, or the alternate key (appId='…')
_AUDIT = r"/security/auditlog/queries"

ROUTES: list[tuple[str, str, str, Callable[[], Any], str]] = [
    # (version, method, path after the version — lower case, a regex matched whole —, model, collection|object)
    ("v1.0", "GET", r"/organization", _model("organization", "Organization"), "collection"),
    ("v1.0", "GET", rf"/organization/{_ID}", _model("organization", "Organization"), "object"),
    ("v1.0", "GET", r"/subscribedskus", _model("subscribed_sku", "SubscribedSku"), "collection"),
    ("v1.0", "GET", r"/users", _model("user", "User"), "collection"),
    ("v1.0", "GET", r"/users/microsoft\.graph\.agentuser", _model("agent_user", "AgentUser"), "collection"),
    ("v1.0", "GET", rf"/users/{_ID}", _model("user", "User"), "object"),
    ("v1.0", "GET", r"/serviceprincipals", _model("service_principal", "ServicePrincipal"), "collection"),
    ("v1.0", "GET", r"/serviceprincipals/microsoft\.graph\.agentidentity",
     _model("agent_identity", "AgentIdentity"), "collection"),
    ("v1.0", "GET", r"/serviceprincipals/microsoft\.graph\.agentidentityblueprintprincipal",
     _model("agent_identity_blueprint_principal", "AgentIdentityBlueprintPrincipal"), "collection"),
    ("v1.0", "GET", _SP, _model("service_principal", "ServicePrincipal"), "object"),
    ("v1.0", "GET", rf"{_SP}/approleassignedto", _model("app_role_assignment", "AppRoleAssignment"), "collection"),
    ("v1.0", "GET", rf"{_SP}/delegatedpermissionclassifications",
     _model("delegated_permission_classification", "DelegatedPermissionClassification"), "collection"),
    ("v1.0", "GET", r"/applications/microsoft\.graph\.agentidentityblueprint",
     _model("agent_identity_blueprint", "AgentIdentityBlueprint"), "collection"),
    ("v1.0", "GET", r"/oauth2permissiongrants", _model("o_auth2_permission_grant", "OAuth2PermissionGrant"),
     "collection"),
    ("v1.0", "GET", r"/policies/authorizationpolicy", _model("authorization_policy", "AuthorizationPolicy"), "object"),
    ("v1.0", "GET", r"/policies/adminconsentrequestpolicy",
     _model("admin_consent_request_policy", "AdminConsentRequestPolicy"), "object"),
    ("v1.0", "GET", r"/teamwork/teamsappsettings", _model("teams_app_settings", "TeamsAppSettings"), "object"),
    ("v1.0", "GET", r"/identity/conditionalaccess/policies",
     _model("conditional_access_policy", "ConditionalAccessPolicy"), "collection"),
    ("v1.0", "GET", r"/external/connections",
     _model("external_connectors.external_connection", "ExternalConnection"), "collection"),
    ("v1.0", "GET", r"/copilot/admin/catalog/packages", _model("copilot_package", "CopilotPackage"), "collection"),
    ("v1.0", "GET", rf"/copilot/admin/catalog/packages/{_ID}",
     _model("copilot_package_detail", "CopilotPackageDetail"), "object"),
    ("v1.0", "GET", r"/appcatalogs/teamsapps", _model("teams_app", "TeamsApp"), "collection"),
    ("v1.0", "GET", r"/teams", _model("team", "Team"), "collection"),
    ("v1.0", "GET", rf"/teams/{_ID}/permissiongrants",
     _model("resource_specific_permission_grant", "ResourceSpecificPermissionGrant"), "collection"),
    ("v1.0", "POST", _AUDIT, _model("security.audit_log_query", "AuditLogQuery"), "object"),
    ("v1.0", "GET", _AUDIT, _model("security.audit_log_query", "AuditLogQuery"), "collection"),
    ("v1.0", "GET", rf"{_AUDIT}/{_ID}", _model("security.audit_log_query", "AuditLogQuery"), "object"),
    ("v1.0", "GET", rf"{_AUDIT}/{_ID}/records", _model("security.audit_log_record", "AuditLogRecord"), "collection"),
    ("beta", "GET", r"/devicemanagement/configurationpolicies",
     _beta("device_management_configuration_policy", "DeviceManagementConfigurationPolicy"), "collection"),
    ("beta", "GET", rf"/devicemanagement/configurationpolicies/{_ID}/assignments",
     _beta("device_management_configuration_policy_assignment", "DeviceManagementConfigurationPolicyAssignment"),
     "collection"),
    ("beta", "GET", rf"/copilot/admin/policysettings/{_ID}", _beta("copilot_policy_setting", "CopilotPolicySetting"),
     "object"),
    ("beta", "GET", r"/reports/serviceprincipalsigninactivities",
     _beta("service_principal_sign_in_activity", "ServicePrincipalSignInActivity"), "collection"),
]
"""Every URL the audit reads (collect/sources.py SOURCES, the audit query's create/status/records, the routes issue 14
adds) mapped to its model: msgraph-sdk for v1.0, msgraph-beta-sdk (a dev dependency) for beta. A `/$count` path
answers a bare integer and needs no entry."""


UNMODELLED: list[tuple[str, str, str, str]] = [
    # (version, method, path regex, why no model): the body must be a JSON collection page, nothing more is known
    ("beta", "GET", r"/copilot/costmanagement/usagereports/(serviceusagerecords|fundingusagerecords)",
     "msgraph-beta-sdk 1.66 has no model for Copilot cost-management usage records (only the costManagementUnit enum)"),
]
"""URLs that Graph documents but neither SDK models: checked as a collection page (a `value` list of objects)."""


def unmodelled(method: str, path: str) -> str | None:
    """Why a URL is checked without a model, or None."""
    version, _, rest = path.lstrip("/").partition("/")
    for v, m, pattern, reason in UNMODELLED:
        if (v, m) == (version, method) and re.fullmatch(pattern, "/" + rest):
            return reason
    return None


def route_for(method: str, path: str) -> tuple[Callable[[], Any], str] | None:
    """The model and shape for a request, or None; path as replay normalises it (lower case, no trailing slash)."""
    version, _, rest = path.lstrip("/").partition("/")
    for v, m, pattern, model, shape in ROUTES:
        if (v, m) == (version, method) and re.fullmatch(pattern, "/" + rest):
            return model, shape
    return None


@dataclass(frozen=True)
class Verdict:
    """What the fidelity check says about one exchange file."""

    file: str
    checked: bool
    problems: tuple[str, ...] = ()
    skipped: str | None = None


def _json_body(rec: Recorded, inline: bool) -> tuple[bool, Any, str | None]:
    """(is JSON, body, parse error): an inline body is JSON; body_text and body_file are when their type says so."""
    if not inline and "json" not in rec.headers.get("content-type", "").lower():
        return False, None, None
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        repeated.extend(sorted({k for k in keys if keys.count(k) > 1}))
        return dict(items)
    try:
        body = json.loads(rec.content(), object_pairs_hook=pairs)
    except ValueError as exc:
        return True, None, f"the body is not valid JSON ({exc})"
    if repeated:  # json.loads keeps the last; Graph never repeats a key
        return True, body, f"a key appears twice in one object: {', '.join(sorted(set(repeated)))}"
    return True, body, None


def check_exchange(file: Path) -> Verdict:
    """Check one exchange file: its 2xx JSON body against the msgraph model its URL maps to."""
    rec = load_exchange(file)
    doc = json.loads(file.read_text(encoding="utf-8"))
    if not 200 <= rec.status < 300:
        return Verdict(file.name, False, skipped=f"status {rec.status}")
    is_json, body, error = _json_body(rec, "body" in doc["response"])
    if not is_json:
        return Verdict(file.name, False, skipped=f"not JSON ({rec.headers.get('content-type', 'no content type')})")
    if error:
        return Verdict(file.name, True, (error,))
    if rec.path.endswith("/$count"):
        ok = isinstance(body, int) and not isinstance(body, bool) and body >= 0
        return Verdict(file.name, True, () if ok else (f"$: a /$count answer is a whole number, got {body!r}",))
    route = route_for(rec.method, rec.path)
    if route is None and unmodelled(rec.method, rec.path):
        page = isinstance(body, dict) and isinstance(body.get("value"), list)
        ok = page and all(isinstance(item, dict) for item in body["value"])
        return Verdict(file.name, True, () if ok else ("$: a collection page (an object with a 'value' list of "
                                                       "objects) expected",))
    if route is None:
        return Verdict(file.name, True, (f"{rec.method} {doc['request']['url']} maps to no msgraph model: add a "
                                         "mapping to ROUTES in tests/test_fixture_fidelity.py (or, where the SDK "
                                         "has no model, exempt the file with the reason)",))
    model, shape = route
    deviations: list[Deviation] = check_body(body, model(), shape == "collection")
    return Verdict(file.name, True, tuple(str(d) for d in deviations))


def exemptions(folder: Path) -> dict[str, str]:
    """`fidelity_exempt` of a fixture folder's tenant.yaml: exchange file name -> why it is deliberately off-schema."""
    meta_file = folder / "tenant.yaml"
    meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    exempt = (meta or {}).get("fidelity_exempt") or {}
    assert isinstance(exempt, dict), f"{meta_file}: fidelity_exempt maps exchange file names to reasons"
    return {str(k): str(v or "").strip() for k, v in exempt.items()}


def folder_id(folder: Path) -> str:
    """tenants/<name> or nights/<pair>/<night>; a folder outside fixtures/ (a test's tmp_path) by its name."""
    try:
        return str(folder.relative_to(ROOT / "fixtures"))
    except ValueError:
        return folder.name


def folder_failures(folder: Path) -> tuple[int, list[str]]:
    """(bodies checked, what is wrong) for one fixture folder, its exemptions applied and checked too."""
    exempt = exemptions(folder)
    files = sorted((folder / "exchanges").glob("*.json"))
    failures: list[str] = []
    checked = 0
    for file in files:
        verdict = check_exchange(file)
        checked += verdict.checked
        if file.name in exempt:
            if not exempt[file.name]:
                failures.append(f"{file.name}: fidelity_exempt needs a reason")
            elif not verdict.problems:
                failures.append(f"{file.name}: exempted ({exempt[file.name]}) but parses cleanly: drop the exemption")
            continue
        failures.extend(f"{folder_id(folder)}/exchanges/{file.name}: {p}" for p in verdict.problems)
    unknown = sorted(set(exempt) - {f.name for f in files})
    failures.extend(f"fidelity_exempt names {name}, which is not an exchange file" for name in unknown)
    return checked, failures


@pytest.mark.parametrize("folder", FOLDERS, ids=[folder_id(f) for f in FOLDERS])
def test_recorded_bodies_parse_through_msgraph_models(folder: Path) -> None:
    checked, failures = folder_failures(folder)
    assert failures == [], "recorded bodies that Graph could not have sent:\n" + "\n".join(failures)
    assert checked > 0, "a fixture folder without a single 2xx JSON body: is it read at all?"
