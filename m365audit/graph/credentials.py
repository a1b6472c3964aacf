"""Sign-in for a live audit: the azure-identity credential each --auth method asks for; no secret is ever printed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from m365audit.errors import AuthError, UsageError

AUTH_METHODS = ("auto", "certificate", "secret", "managed-identity", "workload-identity", "azure-pipelines",
                "azure-cli", "device-code")
DELEGATED_METHODS = ("device-code",)


@dataclass(frozen=True)
class CredentialSettings:
    """How to sign in, from options or the standard AZURE_* environment variables."""

    method: str = "auto"
    tenant_id: str | None = None
    client_id: str | None = None
    certificate_path: str | None = None

    def resolved(self, env: dict[str, str] | None = None) -> CredentialSettings:
        env = dict(os.environ) if env is None else env
        return CredentialSettings(
            method=self.method,
            tenant_id=self.tenant_id or env.get("AZURE_TENANT_ID"),
            client_id=self.client_id or env.get("AZURE_CLIENT_ID"),
            certificate_path=self.certificate_path or env.get("AZURE_CLIENT_CERTIFICATE_PATH"),
        )


AUTH_HINT = (
    "set AZURE_TENANT_ID and AZURE_CLIENT_ID, and AZURE_CLIENT_CERTIFICATE_PATH (recommended) or "
    "AZURE_CLIENT_SECRET; or choose --auth managed-identity, workload-identity or azure-cli "
    "(see README, 'Auditing a real tenant')"
)


GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DNS_NAME = re.compile(r"(?=.{4,253}$)(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}")


def check_tenant_id(tenant_id: str | None) -> None:
    """A tenant id is a GUID or a DNS domain name (contoso.onmicrosoft.com); anything else is a usage error (exit 2).

    Checked before any lock or folder is made: the id names the tenant's folder under --reports.
    """
    if tenant_id is not None and not (GUID.fullmatch(tenant_id) or DNS_NAME.fullmatch(tenant_id)):
        shown = tenant_id if len(tenant_id) <= 60 else tenant_id[:57] + "..."
        raise UsageError(f"tenant id {shown!r} is neither a GUID nor a domain name",
                         hint="give the Directory (tenant) ID from the Entra admin center (a GUID) or the tenant's "
                              "domain, e.g. gemeente.onmicrosoft.com (--tenant-id or AZURE_TENANT_ID)")


DeviceCodePrompt = Callable[[str, str], None]
"""Shows a person where to sign in and the code to enter (verification URL, user code); the CLI prints it."""


def build_credential(settings: CredentialSettings, env: dict[str, str] | None = None,
                     prompt: DeviceCodePrompt | None = None) -> Any:
    """Build the azure-identity (async) credential the settings ask for; never prints anything.

    ``prompt`` shows the device code to a person (``--auth device-code``); this module never writes to a terminal.
    """
    env = dict(os.environ) if env is None else env
    s = settings.resolved(env)
    check_tenant_id(s.tenant_id)
    method = s.method
    if method not in AUTH_METHODS:
        raise UsageError(f"unknown --auth '{method}'", hint=f"choose one of: {', '.join(AUTH_METHODS)}")
    if method == "auto":
        if s.certificate_path:
            method = "certificate"
        elif env.get("AZURE_CLIENT_SECRET"):
            method = "secret"
        elif env.get("AZURE_FEDERATED_TOKEN_FILE"):
            method = "workload-identity"
        elif env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
            method = "managed-identity"
        else:
            raise AuthError("no credential configured for a live audit", hint=AUTH_HINT)
    from azure.identity import aio

    if method in ("certificate", "secret", "workload-identity", "azure-pipelines"):
        missing = [n for n, v in (("AZURE_TENANT_ID", s.tenant_id), ("AZURE_CLIENT_ID", s.client_id)) if not v]
        if missing:
            raise AuthError(f"--auth {method} needs {' and '.join(missing)}", hint=AUTH_HINT)
    tenant_id, client_id = s.tenant_id or "", s.client_id or ""
    if method == "certificate":
        if not s.certificate_path or not os.path.isfile(s.certificate_path):
            raise AuthError(f"certificate file not found: {s.certificate_path!r}",
                            hint="point --certificate (or AZURE_CLIENT_CERTIFICATE_PATH, when the option is not "
                                 "given) at a PEM or PKCS12 file with the private key")
        if not os.access(s.certificate_path, os.R_OK):
            raise AuthError(f"certificate file not readable for this user: {s.certificate_path!r}",
                            hint="let the user that runs the audit read it, e.g. chown root:m365audit and chmod 0640 "
                                 "(docs/recipes/setup-debian.sh)")
        return _certificate(aio, tenant_id, client_id, s.certificate_path, env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"))
    if method == "secret":
        secret = env.get("AZURE_CLIENT_SECRET")
        if not secret:
            raise AuthError("--auth secret needs AZURE_CLIENT_SECRET in the environment",
                            hint="secrets are read from the environment only, never from the command line")
        return aio.ClientSecretCredential(tenant_id, client_id, secret)
    if method == "workload-identity":
        token_file = env.get("AZURE_FEDERATED_TOKEN_FILE")
        if not token_file:
            raise AuthError("--auth workload-identity needs AZURE_FEDERATED_TOKEN_FILE",
                            hint="the path of the federated (OIDC) token, e.g. written by the GitHub Actions step in "
                                 "docs/operations.md; Kubernetes workload identity sets it for you")
        return aio.WorkloadIdentityCredential(tenant_id=tenant_id, client_id=client_id, token_file_path=token_file)
    if method == "azure-pipelines":
        return _azure_pipelines(aio, tenant_id, client_id, env)
    if method == "device-code":
        return _device_code(s.tenant_id, s.client_id, prompt)
    if method == "managed-identity":
        return aio.ManagedIdentityCredential(client_id=s.client_id) if s.client_id else aio.ManagedIdentityCredential()
    return aio.AzureCliCredential(tenant_id=s.tenant_id) if s.tenant_id else aio.AzureCliCredential()


def _encrypted_pem(path: str) -> bool:
    """Whether the file holds a password-protected PEM private key (PKCS#8 or the older OpenSSL form)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return False
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in head or b"Proc-Type: 4,ENCRYPTED" in head


def _certificate(aio: Any, tenant_id: str, client_id: str, path: str, password: str | None) -> Any:
    """CertificateCredential; a key it cannot read (no key, wrong or missing password) is one clear line."""
    try:
        return aio.CertificateCredential(tenant_id, client_id, path, password=password)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        # A wrong password usually fails the decryption; about one key in 256 it decrypts to bytes that merely
        # fail to parse ("Could not deserialize key data"): an encrypted key that will not load is that too.
        if "password" in text.lower() or "decrypt" in text.lower() or password is not None and _encrypted_pem(path):
            what = "a password is needed" if password is None else "the password is wrong"
            raise AuthError(f"cannot read the private key in {path}: {what}",
                            hint="set AZURE_CLIENT_CERTIFICATE_PASSWORD to the key's password (from the environment "
                                 "only, never on the command line)") from exc
        if "private key" in text.lower():
            raise AuthError(f"{path} holds no private key, only a certificate",
                            hint="give a PEM file with the certificate and its private key, or a PKCS12 (.pfx) file; "
                                 "the public certificate alone is what you upload to the app registration") from exc
        raise AuthError(f"cannot read the certificate {path}: {text.splitlines()[0] if text else type(exc).__name__}",
                        hint="give a PEM or PKCS12 file with the certificate and its private key") from exc


def _azure_pipelines(aio: Any, tenant_id: str, client_id: str, env: dict[str, str]) -> Any:
    """Workload identity federation from an Azure DevOps service connection (OIDC, no secret)."""
    connection = env.get("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID") or env.get("AZURE_SERVICE_CONNECTION_ID")
    token = env.get("SYSTEM_ACCESSTOKEN")
    if not connection or not token:
        raise AuthError("--auth azure-pipelines needs AZURESUBSCRIPTION_SERVICE_CONNECTION_ID and SYSTEM_ACCESSTOKEN",
                        hint="map $(System.AccessToken) to SYSTEM_ACCESSTOKEN in the pipeline step and set the "
                             "service connection id (docs/operations.md, 'Azure DevOps')")
    return aio.AzurePipelinesCredential(tenant_id=tenant_id, client_id=client_id,
                                        service_connection_id=connection, system_access_token=token)


class SyncCredentialAdapter:
    """An async face for a sync azure-identity credential (device code sign-in exists only as sync)."""

    def __init__(self, credential: Any) -> None:
        self.credential = credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """The sync call in a daemon thread, awaited through a future: Ctrl-C cancels the wait at once.

        Not asyncio.to_thread: asyncio.run joins the executor's threads on the way out, so a device-code sign-in
        nobody completes would hold the interrupted process for its whole lifetime (15 minutes).
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if not done.done():
                if error is not None:
                    done.set_exception(error)
                else:
                    done.set_result(result)

        def work() -> None:
            try:
                result, error = self.credential.get_token(*scopes, **kwargs), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, never lost
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the loop is gone: the run was interrupted, nobody waits
                loop.call_soon_threadsafe(settle, result, error)

        threading.Thread(target=work, name="m365audit-sign-in", daemon=True).start()
        return await done

    async def close(self) -> None:
        self.credential.close()


def _device_code(tenant_id: str | None, client_id: str | None,
                 prompt: DeviceCodePrompt | None) -> SyncCredentialAdapter:
    """A person signs in with a device code (delegated: reads the delegated-only Copilot settings)."""
    if not tenant_id or not client_id:
        raise AuthError("--auth device-code needs AZURE_TENANT_ID and AZURE_CLIENT_ID",
                        hint="use the audit app's id; enable 'Allow public client flows' on it and add the "
                             "delegated permission CopilotPolicySettings.Read (docs/operations.md)")
    if prompt is None:
        raise UsageError("--auth device-code needs a terminal to show the sign-in code",
                         hint="run it from the command line, not from --config")
    show = prompt

    def prompt_callback(verification_uri: str, user_code: str, expires_on: Any) -> None:
        show(verification_uri, user_code)

    from azure.identity import DeviceCodeCredential

    return SyncCredentialAdapter(DeviceCodeCredential(tenant_id=tenant_id, client_id=client_id,
                                                      prompt_callback=prompt_callback))


class PlaceholderCredential:
    """Stands in for a real credential in replay: a token no service would accept, and no login."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("replay-placeholder-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


def token_roles(token: str) -> list[str] | None:
    """The application roles in an access token's claims, or None when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    roles = payload.get("roles") if isinstance(payload, dict) else None
    return [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
