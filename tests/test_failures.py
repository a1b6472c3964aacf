"""Every failure is one line with a hint that names its cause, and the right exit code (issue 13, class 8)."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from m365audit.cli import cli
from m365audit.errors import AuthError, UsageError
from m365audit.graph import CredentialSettings, GraphSession, build_credential, check_tenant_id
from m365audit.graph.credentials import AUTH_HINT, SyncCredentialAdapter
from m365audit.graph.signin import sign_in_error
from tests.conftest import ROOT

TENANT = "7f3a9c21-4b6d-4e8f-a1c3-5d7e9f0b2c46"
CLIENT = "0b9a7c4e-2f31-4d5a-8e6b-1c2d3e4f5a6b"


def one_error(result: Result) -> tuple[str, str]:
    """stderr is exactly 'Error: …' and 'Hint: …', no traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Error: ") and lines[1].startswith("Hint: "), result.stderr
    return lines[0], lines[1]


# --------------------------------------------------------------------------- certificates


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m365audit-test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    folder = tmp_path_factory.mktemp("pem")
    (folder / "cert-only.pem").write_bytes(cert)
    (folder / "encrypted.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"het-goede-wachtwoord")) + cert)
    return {"cert-only": folder / "cert-only.pem", "encrypted": folder / "encrypted.pem"}


@pytest.mark.parametrize(("pem", "password", "says"), [
    ("cert-only", None, "no private key"),
    ("encrypted", "fout", "password is wrong"),
    ("encrypted", None, "password is needed"),
])
def test_an_unreadable_certificate_key_is_one_line(pems: dict[str, Path], pem: str, password: str | None,
                                                   says: str) -> None:
    env = {"AZURE_CLIENT_CERTIFICATE_PASSWORD": password} if password else {}
    with pytest.raises(AuthError, match=says) as caught:
        build_credential(CredentialSettings("certificate", TENANT, CLIENT, str(pems[pem])), env)
    assert caught.value.hint and "AZURE_CLIENT_ID" not in caught.value.hint
    result = CliRunner(env={"AZURE_CLIENT_CERTIFICATE_PASSWORD": password}).invoke(
        cli, ["audit", "--auth", "certificate", "--tenant-id", TENANT, "--client-id", CLIENT,
              "--certificate", str(pems[pem])])
    assert result.exit_code == 4
    error, hint = one_error(result)
    assert says in error


def test_a_wrong_password_that_decrypts_to_garbage_is_still_the_wrong_password(
        pems: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """About one key in 256, a wrong password passes the padding check and the key then fails to parse:
    cryptography says 'Could not deserialize key data' and nothing about a password (seen in CI)."""
    from azure.identity import aio

    def garbage(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("Could not deserialize key data. The data may be in an incorrect format, it may be "
                         "encrypted with an unsupported algorithm. Details: ASN.1 parsing error: unexpected tag")

    monkeypatch.setattr(aio, "CertificateCredential", garbage)
    with pytest.raises(AuthError, match="the password is wrong"):
        build_credential(CredentialSettings("certificate", TENANT, CLIENT, str(pems["encrypted"])),
                         {"AZURE_CLIENT_CERTIFICATE_PASSWORD": "fout"})
    with pytest.raises(AuthError, match="cannot read the certificate"):  # not encrypted: not a password matter
        build_credential(CredentialSettings("certificate", TENANT, CLIENT, str(pems["cert-only"])),
                         {"AZURE_CLIENT_CERTIFICATE_PASSWORD": "fout"})


# --------------------------------------------------------------------------- tenant ids


@pytest.mark.parametrize("tenant", [TENANT, "gemeente.onmicrosoft.com", "voorbeeld.nl", TENANT.upper()])
def test_guid_and_domain_tenant_ids_are_accepted(tenant: str) -> None:
    check_tenant_id(tenant)


@pytest.mark.parametrize("tenant", ["../../etc", "common", "gemeente", "a b.nl", TENANT + "x", "-x.nl", "x" * 300,
                                    "voorbeeld.nl/..", "\x1b[31m.nl"])
def test_a_tenant_id_that_is_no_guid_or_domain_exits_2_before_any_lock(tenant: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        check_tenant_id(tenant)
    reports = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["audit", "--auth", "none", "--graph-url", "http://127.0.0.1:9",
                                      "--tenant-id", tenant, "--reports", str(reports)])
    assert result.exit_code == 2, result.output
    one_error(result)
    assert not reports.exists(), "no folder, no lock"


# --------------------------------------------------------------------------- policy files


def test_a_policy_file_nested_too_deep_is_one_line_exit_2(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(ROOT / "policies", pack)
    for depth in (5000, 80):
        (pack / "rules" / "deep.yaml").write_text("rules: " + "[" * depth + "]" * depth + "\n", encoding="utf-8")
        result = CliRunner().invoke(cli, ["validate", str(pack)])
        assert result.exit_code == 2, result.output
        error, _ = one_error(result)
        assert "deep.yaml:1: nested too deep" in error


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_exits_130_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import m365audit.audit as audit_face

    async def interrupted(options: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(audit_face, "run_audit", interrupted)
    result = CliRunner().invoke(cli, ["audit", "--replay", str(ROOT / "fixtures" / "tenants" / "gemeente-voorbeeld"),
                                      "--reports", str(tmp_path)])
    assert result.exit_code == 130
    error, _ = one_error(result)
    assert "interrupted" in error


class BlockingSignIn:
    """A sync credential like DeviceCodeCredential while nobody enters the code: get_token does not return."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def get_token(self, *scopes: str, **kwargs: Any) -> str:
        self.started.set()
        self.release.wait()
        return "token"

    def close(self) -> None:
        return None


def test_a_pending_device_code_sign_in_is_cancelled_at_once() -> None:
    """Cancelling the wait ends asyncio.run while the sign-in thread still blocks (to_thread would be joined)."""
    blocking = BlockingSignIn()
    outcome: list[str] = []

    async def main() -> None:
        task = asyncio.ensure_future(SyncCredentialAdapter(blocking).get_token("scope"))
        while not blocking.started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            outcome.append("cancelled")

    runner = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    runner.start()
    runner.join(timeout=60)  # a guard against a hang, not a measurement: it returns as soon as the run ends
    still_waiting = runner.is_alive()
    blocking.release.set()
    runner.join()
    assert not still_waiting and outcome == ["cancelled"]


def test_the_adapter_still_returns_tokens_and_errors() -> None:
    class Fails(BlockingSignIn):
        def get_token(self, *scopes: str, **kwargs: Any) -> str:
            raise ValueError("no")

    blocking = BlockingSignIn()
    blocking.release.set()
    assert asyncio.run(SyncCredentialAdapter(blocking).get_token("s")) == "token"
    with pytest.raises(ValueError, match="no"):
        asyncio.run(SyncCredentialAdapter(Fails()).get_token("s"))


# --------------------------------------------------------------------------- sign-in hints name the cause


class FailingCredential:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise self.exc

    async def close(self) -> None:
        return None


def _sign_in(exc: BaseException) -> AuthError:
    async def go() -> None:
        async with GraphSession(FailingCredential(exc)) as session:
            await session.token_roles()

    with pytest.raises(AuthError) as caught:
        asyncio.run(go())
    return caught.value


def test_a_dns_failure_is_not_blamed_on_the_settings() -> None:
    from azure.core.exceptions import ServiceRequestError

    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except socket.gaierror as inner:
            raise ServiceRequestError("Cannot connect to host login.microsoftonline.com:443") from inner
    except ServiceRequestError as exc:
        error = _sign_in(exc)
    assert error.hint != AUTH_HINT and "DNS" in (error.hint or "") and "AZURE_CLIENT_ID" not in (error.hint or "")
    assert "\n" not in error.message


def test_a_refused_connection_during_a_real_sign_in_names_the_network() -> None:
    """azure-identity's own client-secret flow against a closed port on 127.0.0.1 (no network)."""
    from azure.identity import aio

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the with ends: nothing listens there
    credential = aio.ClientSecretCredential(TENANT, CLIENT, "secret", authority=f"127.0.0.1:{port}")
    error = _sign_in_real(credential)
    assert "network" in (error.hint or "") and error.hint != AUTH_HINT


def _sign_in_real(credential: Any) -> AuthError:
    async def go() -> None:
        async with GraphSession(credential) as session:
            await session.token_roles()

    with pytest.raises(AuthError) as caught:
        asyncio.run(go())
    return caught.value


@pytest.mark.parametrize(("code", "names"), [("AADSTS700016", "AZURE_CLIENT_ID"), ("AADSTS90002", "AZURE_TENANT_ID"),
                                             ("AADSTS7000215", "AZURE_CLIENT_SECRET"), ("AADSTS700027", "certificate")])
def test_entra_error_codes_get_their_own_hint(code: str, names: str) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    error = sign_in_error(ClientAuthenticationError(f"Authentication failed: {code}: something\nTrace ID: x"))
    assert names in (error.hint or "") and error.message.count("\n") == 0


def test_a_real_ctrl_c_during_an_audit_exits_130_and_leaves_nothing(tmp_path: Path) -> None:
    """SIGINT to a running audit (a replayed answer that takes a minute): exit 130, one line, no run, no lock."""
    import json
    import signal
    import subprocess
    import sys
    import time

    tenant = tmp_path / "slow"
    shutil.copytree(ROOT / "fixtures" / "tenants" / "gemeente-voorbeeld", tenant)
    users = tenant / "exchanges" / "030-users-page-1.json"
    doc = json.loads(users.read_text(encoding="utf-8"))
    users.write_text(json.dumps({**doc, "delay_ms": 600_000}), encoding="utf-8")
    reports = tmp_path / "reports"
    # The audit starts with Ctrl-C delivered, as from a terminal. A test run started in the background (`pytest &`,
    # some CI runners) ignores SIGINT, and an ignored signal stays ignored in every child: without this reset the
    # audit rightly never sees the Ctrl-C and the test hangs. -X faulthandler: should the audit ever hang after
    # Ctrl-C, SIGABRT makes it print every thread's stack into the failure.
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "m365audit", "audit", "--replay", str(tenant),
                             "--reports", str(reports)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
        while not list((reports / ".incomplete").glob("*/exchanges/*.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=30)
            pytest.fail(f"the audit did not stop after Ctrl-C; its stacks:\n{err[-8000:]}")
    finally:
        if proc.poll() is None:  # a hang: kill it and close its pipes, so no later test inherits the leak
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0] == "Error: interrupted (Ctrl-C)" and lines[1].startswith("Hint: "), err
    assert list((reports / ".incomplete").iterdir()) == [], "the unfinished run is gone"
    from m365audit.evidence.lock import TenantLock

    for tenant_dir in (p for p in reports.iterdir() if not p.name.startswith(".")):
        lock = TenantLock(tenant_dir)
        lock.acquire(0.0)  # RunFolderError if the interrupted run still held it
        lock.release()
