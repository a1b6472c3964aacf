"""Talk to Microsoft Graph: the msgraph-sdk client, sign-in, replay of recorded exchanges, throttling, JSON."""

from m365audit.graph.capture import current_source
from m365audit.graph.client import GRAPH_ROOT, GraphSession
from m365audit.graph.credentials import (
    AUTH_METHODS,
    DELEGATED_METHODS,
    CredentialSettings,
    DeviceCodePrompt,
    PlaceholderCredential,
    build_credential,
    check_tenant_id,
)
from m365audit.graph.replay import ReplayTransport, body_file_path, recorded_paths, tenant_metadata

__all__ = [
    "AUTH_METHODS", "DELEGATED_METHODS", "GRAPH_ROOT", "CredentialSettings", "DeviceCodePrompt", "GraphSession",
    "PlaceholderCredential", "ReplayTransport", "body_file_path", "build_credential", "check_tenant_id",
    "current_source",
    "recorded_paths", "tenant_metadata",
]
