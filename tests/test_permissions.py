"""Permissions: least privilege from SOURCES, manifest and az forms, and the preflight on the token's roles."""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from m365audit.audit import AuditOptions, run_audit, runner
from m365audit.audit.runner import needed_sources
from m365audit.cli import cli
from m365audit.collect import (
    GRAPH_APP_ID,
    SOURCES,
    az_commands,
    az_managed_identity_commands,
    is_guid,
    manifest_fragment,
    preflight,
    preflight_summary,
    requirements,
)
from m365audit.collect.permissions import APP_ROLE_IDS, UNPUBLISHED_ROLE_IDS, accepted_roles
from m365audit.evaluate import load_pack
from m365audit.graph import ReplayTransport
from tests.conftest import FIXED_NOW, TENANTS, FakeCredential


def jwt(claims: dict[str, object]) -> str:
    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


ALL = sorted({p for s in SOURCES.values() if not s.delegated for p in s.permissions[:1]})  # application roles


def test_every_permission_of_every_source_has_a_real_role_id() -> None:
    missing = [p for p in ALL if not is_guid(APP_ROLE_IDS.get(p)) and p not in UNPUBLISHED_ROLE_IDS]
    assert missing == []
    assert len(set(APP_ROLE_IDS.values())) == len(APP_ROLE_IDS), "two permissions share a role id"


def test_requirements_follow_the_rules_and_their_dependencies() -> None:
    reqs = {r.permission: r for r in requirements(load_pack())}
    assert set(reqs) == {SOURCES[k].permissions[0] for k in needed_sources(load_pack())
                         for k in [k, *SOURCES[k].depends_on]}
    assert "AiEnterpriseInteraction.Read.All" not in reqs
    assert "app_role_assignments" in reqs["Application.Read.All"].sources
    assert "organization" in reqs["Organization.Read.All"].sources


def test_manifest_fragment_and_az_commands_name_graph_and_every_role() -> None:
    reqs = requirements(load_pack())
    fragment = manifest_fragment(reqs)
    [graph] = fragment["requiredResourceAccess"]  # type: ignore[index]
    assert graph["resourceAppId"] == GRAPH_APP_ID == "00000003-0000-0000-c000-000000000000"
    assert {a["id"] for a in graph["resourceAccess"]} == {APP_ROLE_IDS[r.permission] for r in reqs
                                                          if r.permission not in UNPUBLISHED_ROLE_IDS}
    assert all(a["type"] == "Role" for a in graph["resourceAccess"])
    add, consent = az_commands(reqs, "0e5f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b")
    assert add.startswith("az ad app permission add --id 0e5f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b --api " + GRAPH_APP_ID)
    assert f"{APP_ROLE_IDS['Policy.Read.All']}=Role" in add
    assert consent == "az ad app permission admin-consent --id 0e5f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"


def test_managed_identity_commands_assign_every_role_and_expand_to_json() -> None:
    reqs = requirements(load_pack())
    first, *assignments = az_managed_identity_commands(reqs, "$MI_ID")
    assert first.startswith("GRAPH_SP=$(az ad sp show --id " + GRAPH_APP_ID)
    assert len(assignments) == len(reqs)
    command = assignments[0].split("  #")[0]
    argv = shlex.split(command.replace("$MI_ID", "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f").replace("$GRAPH_SP", "x"))
    body = json.loads(argv[argv.index("--body") + 1])
    assert body == {"principalId": "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f", "resourceId": "x",
                    "appRoleId": reqs[0].role_id}


@pytest.mark.parametrize("fmt, expected", [("table", "Organization.Read.All"), ("manifest", "requiredResourceAccess"),
                                           ("az", "az ad app permission add"),
                                           ("az-managed-identity", "appRoleAssignments")])
def test_permissions_command(fmt: str, expected: str) -> None:
    result = CliRunner().invoke(cli, ["permissions", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert expected in result.output
    if fmt == "manifest":
        json.loads(result.stdout)  # the note on a permission without a published role id goes to stderr
    assert "CopilotCostManagement-Reports.Read.All has no known app-role id" in result.stderr


def test_broader_grants_are_accepted() -> None:
    assert "Directory.Read.All" in accepted_roles("users")
    assert "Directory.Read.All" in accepted_roles("organization")
    assert "Policy.ReadWrite.ConditionalAccess" in accepted_roles("conditional_access")
    assert "Policy.ReadWrite.ConditionalAccess" not in accepted_roles("authorization_policy")
    keys = ["users", "organization", "subscribed_skus"]
    assert preflight(keys, ["Directory.ReadWrite.All"]) == {}


def test_preflight_refuses_exactly_the_uncovered_sources_and_names_the_permission() -> None:
    refused = preflight(["users", "app_role_assignments", "conditional_access"], ["User.Read.All"])
    assert set(refused) == {"resource_permissions", "app_role_assignments", "conditional_access", }
    assert refused["conditional_access"].code == "PermissionMissing"
    assert "Policy.Read.All" in (refused["conditional_access"].hint or "")
    line = preflight_summary(["users", "app_role_assignments", "conditional_access"], ["User.Read.All"], refused)
    assert line.startswith("Preflight: 3 of 4 sources refused") and "Application.Read.All" in line


@pytest.mark.parametrize("roles", [None, []])
def test_preflight_does_nothing_without_a_roles_claim(roles: list[str] | None) -> None:
    assert preflight(["users"], roles) == {}
    assert "no application roles claim" in preflight_summary(["users"], roles, {})


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def begin(self, sources: int) -> None: ...

    def exchange(self, exchange: object) -> None: ...

    def source_done(self, key: str, ok: bool) -> None: ...

    def end(self) -> None: ...


def test_a_live_audit_refuses_before_calling_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roles = ["Organization.Read.All", "User.Read.All", "Application.Read.All", "Policy.Read.All"]
    monkeypatch.setattr(runner, "build_credential", lambda *a, **k: FakeCredential(jwt({"roles": roles})))
    monkeypatch.setattr(runner, "AUDIT_POLL_INTERVAL", 0.0)
    tenant = TENANTS / "gemeente-voorbeeld"
    replay = ReplayTransport.from_folder(tenant)
    notes = Notes()
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path, now=FIXED_NOW, transport=replay, progress=notes)))
    refused = {k: s for k, s in result.snapshot.sources.items() if s.error and s.error.code == "PermissionMissing"}
    assert "external_connections" in refused and "intune_policies" in refused and "users" not in refused
    assert all(s.requests == 0 for s in refused.values()), "refused sources never reach Graph"
    assert "ExternalConnection.Read.All" in (refused["external_connections"].error.hint or "")  # type: ignore[union-attr]
    assert result.exit_code == 3
    [line] = notes.notes
    assert line.startswith("Preflight:") and "DeviceManagementConfiguration.Read.All" in line


def test_a_placeholder_token_refuses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "build_credential", lambda *a, **k: FakeCredential("not-a-jwt"))
    monkeypatch.setattr(runner, "AUDIT_POLL_INTERVAL", 0.0)
    notes = Notes()
    result = asyncio.run(run_audit(AuditOptions(reports=tmp_path, now=FIXED_NOW, progress=notes,
                                                transport=ReplayTransport.from_folder(TENANTS / "gemeente-voorbeeld"))))
    assert not any(s.error and s.error.code == "PermissionMissing" for s in result.snapshot.sources.values())
    assert result.exit_code == 0


# --------------------------------------------------------------------------- sign-in (no network: which class is built)

SECRET = "Zx8Q~never-print-this-secret-value"
IDS = {"AZURE_TENANT_ID": "5b1c7e2a-0d4f-4e6a-9c1b-2f3e4d5c6b7a",
       "AZURE_CLIENT_ID": "0e5f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"}


def pem(tmp_path: Path) -> Path:
    """A throw-away self-signed certificate with its private key, as azure-identity expects."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m365audit-test.voorbeeld.nl")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path = tmp_path / "audit.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("method, extra, expected", [
    ("secret", {"AZURE_CLIENT_SECRET": SECRET}, "ClientSecretCredential"),
    ("auto", {"AZURE_CLIENT_SECRET": SECRET}, "ClientSecretCredential"),
    ("workload-identity", {"AZURE_FEDERATED_TOKEN_FILE": "/var/run/oidc/token"}, "WorkloadIdentityCredential"),
    ("auto", {"AZURE_FEDERATED_TOKEN_FILE": "/var/run/oidc/token"}, "WorkloadIdentityCredential"),
    ("azure-pipelines", {"AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": "9f1c", "SYSTEM_ACCESSTOKEN": SECRET},
     "AzurePipelinesCredential"),
    ("managed-identity", {}, "ManagedIdentityCredential"),
    ("auto", {"IDENTITY_ENDPOINT": "http://127.0.0.1:42356/msi/token"}, "ManagedIdentityCredential"),
    ("azure-cli", {}, "AzureCliCredential"),
])
def test_each_method_builds_its_azure_identity_class(method: str, extra: dict[str, str], expected: str) -> None:
    from azure.identity import aio

    from m365audit.graph import CredentialSettings, build_credential

    credential = build_credential(CredentialSettings(method=method), {**IDS, **extra})
    assert type(credential).__name__ == expected
    assert isinstance(credential, getattr(aio, expected)), "the async flavour, for the async SDK"
    assert SECRET not in repr(credential)


def test_certificate_is_the_first_choice_of_auto(tmp_path: Path) -> None:
    from azure.identity import aio

    from m365audit.graph import CredentialSettings, build_credential

    env = {**IDS, "AZURE_CLIENT_CERTIFICATE_PATH": str(pem(tmp_path)), "AZURE_CLIENT_SECRET": SECRET}
    assert isinstance(build_credential(CredentialSettings(), env), aio.CertificateCredential)


def test_device_code_is_delegated_and_prompts_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from azure.identity import DeviceCodeCredential

    from m365audit.cli.base import device_code_prompt
    from m365audit.errors import UsageError
    from m365audit.graph import DELEGATED_METHODS, CredentialSettings, build_credential
    from m365audit.graph.credentials import SyncCredentialAdapter

    credential = build_credential(CredentialSettings(method="device-code"), dict(IDS), device_code_prompt("nl"))
    assert isinstance(credential, SyncCredentialAdapter) and isinstance(credential.credential, DeviceCodeCredential)
    assert "device-code" in DELEGATED_METHODS
    credential.credential._prompt_callback("https://microsoft.com/devicelogin", "ABCD-EFGH", None)
    out, err = capsys.readouterr()
    assert out == "" and "ABCD-EFGH" in err and "Meld u aan" in err, "the CLI shows the code, on stderr"
    with pytest.raises(UsageError, match="terminal"):  # credentials.py never prints: without a prompt it refuses
        build_credential(CredentialSettings(method="device-code"), dict(IDS))


@pytest.mark.parametrize("method, env, message", [
    ("workload-identity", IDS, "AZURE_FEDERATED_TOKEN_FILE"),
    ("azure-pipelines", IDS, "SYSTEM_ACCESSTOKEN"),
    ("device-code", {}, "AZURE_TENANT_ID and AZURE_CLIENT_ID"),
    ("certificate", {**IDS, "AZURE_CLIENT_CERTIFICATE_PATH": "/nonexistent/audit.pem"}, "certificate file not found"),
])
def test_missing_settings_say_what_to_set(method: str, env: dict[str, str], message: str) -> None:
    from m365audit.errors import AuthError
    from m365audit.graph import CredentialSettings, build_credential

    with pytest.raises(AuthError, match=message) as err:
        build_credential(CredentialSettings(method=method), dict(env))
    assert err.value.hint


def test_a_refused_secret_is_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import aio

    async def refuse(self: object, *scopes: str, **kwargs: object) -> object:
        raise ClientAuthenticationError(message="AADSTS7000215: Invalid client secret provided.")

    monkeypatch.setattr(aio.ClientSecretCredential, "get_token", refuse)
    for name, value in {**IDS, "AZURE_CLIENT_SECRET": SECRET}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AZURE_CLIENT_CERTIFICATE_PATH", raising=False)
    result = CliRunner().invoke(cli, ["audit", "--auth", "secret", "--reports", str(tmp_path)])
    assert result.exit_code == 4
    assert "AADSTS7000215" in result.output and SECRET not in result.output
    assert not any(SECRET in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())
