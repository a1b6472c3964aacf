"""Why a sign-in failed, in one line with a hint that names the actual cause (network, tenant, app, secret …)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

from m365audit.errors import AuthError
from m365audit.graph.credentials import AUTH_HINT

SIGN_IN_HOST = "login.microsoftonline.com"
DNS_HINT = (f"the sign-in host ({SIGN_IN_HOST}) could not be found: check DNS and the proxy settings (HTTPS_PROXY); "
            "the credentials themselves were not tried")
NETWORK_HINT = (f"{SIGN_IN_HOST} could not be reached: check the network path (proxy HTTPS_PROXY, firewall, TLS "
                "inspection); the credentials themselves were not tried")
AADSTS = re.compile(r"\bAADSTS(\d+)")
AADSTS_HINTS: dict[str, str] = {
    "90002": "Entra ID does not know this tenant: check AZURE_TENANT_ID (the Directory ID, or the tenant's domain)",
    "900023": "Entra ID does not know this tenant: check AZURE_TENANT_ID (the Directory ID, or the tenant's domain)",
    "700016": "the app is not in this tenant: check AZURE_CLIENT_ID (Application ID) and AZURE_TENANT_ID",
    "7000215": "the client secret is wrong: create a new one (a certificate is better) and set AZURE_CLIENT_SECRET",
    "7000222": "the client secret has expired: create a new one (a certificate is better) and set AZURE_CLIENT_SECRET",
    "700027": "the certificate is not (or no longer) registered on the app: upload it under Certificates & secrets",
    "7000112": "the app registration is disabled: enable it in Entra ID",
    "50034": "the account does not exist in this tenant: sign in with an account of the audited tenant",
    "50126": "wrong user name or password",
    "65001": "the app lacks admin consent: grant it in Entra ID, API permissions (docs/operations.md)",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_network(exc: BaseException) -> bool:
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    names = {type(e).__name__ for e in _chain(exc)}
    return any(isinstance(e, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError))
               for e in _chain(exc)) or bool(names & {"ConnectError", "ConnectTimeout", "ClientConnectorError",
                                                      "ClientConnectorDNSError", "ServerDisconnectedError"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sign_in_error(exc: BaseException) -> AuthError:
    """An azure-identity (or network) exception during sign-in as one AuthError with the hint its cause needs."""
    if any(isinstance(e, socket.gaierror) or type(e).__name__ == "ClientConnectorDNSError" for e in _chain(exc)):
        return AuthError(f"sign-in failed: cannot look up {SIGN_IN_HOST} ({_first_line(exc)})", hint=DNS_HINT)
    if _is_network(exc):
        return AuthError(f"sign-in failed: cannot reach the sign-in service ({_first_line(exc)})", hint=NETWORK_HINT)
    code = AADSTS.search(str(exc))
    hint = AADSTS_HINTS.get(code.group(1), AUTH_HINT) if code else AUTH_HINT
    return AuthError(f"sign-in failed: {_first_line(exc)}", hint=hint)
