"""Collect: the SOURCES table, reading every source as ok or error, and the Graph permissions they need."""

from m365audit.collect.collector import DEPENDENCY_FAILED, build_snapshot, collect, with_dependencies
from m365audit.collect.fetching import (
    AI_AUDIT_RECORD_TYPES,
    AUDIT_POLL_INTERVAL,
    EXCHANGE_APP_ID,
    GRAPH_APP_ID,
    RESOURCE_APPS,
    SHAREPOINT_APP_ID,
    FetchContext,
)
from m365audit.collect.permissions import (
    UNPUBLISHED_ROLE_IDS,
    az_commands,
    az_managed_identity_commands,
    manifest_fragment,
    preflight,
    preflight_summary,
    requirements,
    table,
)
from m365audit.collect.sources import (
    SOURCES,
    app_only,
    delegated_answers,
    is_guid,
    permission_hint,
)

__all__ = [
    "AI_AUDIT_RECORD_TYPES", "AUDIT_POLL_INTERVAL", "DEPENDENCY_FAILED", "EXCHANGE_APP_ID", "GRAPH_APP_ID",
    "RESOURCE_APPS", "SHAREPOINT_APP_ID", "SOURCES", "UNPUBLISHED_ROLE_IDS", "FetchContext", "app_only", "az_commands",
    "az_managed_identity_commands", "build_snapshot", "collect", "delegated_answers", "is_guid", "manifest_fragment",
    "permission_hint", "preflight", "preflight_summary", "requirements", "table", "with_dependencies",
]
