"""Evidence: the exchange store, collected pages, the run folder and its lock, the manifest, verify and prune."""

from m365audit.evidence.exchanges import ExchangeRef, ExchangeSink, ExchangeStore, RecordedExchange, exchange_refs
from m365audit.evidence.files import (
    MANIFEST,
    latest_run,
    new_run_id,
    runs,
    safe_name,
    sealed_run_around,
    sha256_file,
)
from m365audit.evidence.items import (
    ItemsError,
    ItemsWriter,
    Page,
    PagedItems,
    PageObserver,
    first_non_object,
    is_list,
)
from m365audit.evidence.prune import prune_tenant, tenant_dirs, verify_chain_with_ledger
from m365audit.evidence.runfolder import RunFolder, interrupted_runs, policy_copies
from m365audit.evidence.runpaths import previous_run, resolve_pair
from m365audit.evidence.signing import SIGNATURE, Signer, generate_key_pair, load_public_keys, load_signer
from m365audit.evidence.snapshot_file import moved, read_head, read_snapshot, rebound, write_snapshot
from m365audit.evidence.strictjson import DECODES, MAX_DEPTH, STORED_DEPTH, MalformedJson, loads_page
from m365audit.evidence.strictjson import loads as strict_loads
from m365audit.evidence.tenant_lookup import describe as describe_tenant
from m365audit.evidence.tenant_lookup import find_tenant, stored_tenants
from m365audit.evidence.verify import VerifyReport, verify_chain, verify_run

__all__ = [
    "DECODES",
    "ExchangeRef", "ExchangeSink", "ExchangeStore", "ItemsError", "ItemsWriter", "MANIFEST", "MAX_DEPTH",
    "MalformedJson", "Page", "PageObserver", "PagedItems", "RecordedExchange", "RunFolder", "SIGNATURE", "STORED_DEPTH",
    "Signer",
    "VerifyReport", "describe_tenant", "exchange_refs", "find_tenant", "first_non_object", "generate_key_pair",
    "interrupted_runs", "is_list", "latest_run", "loads_page", "load_public_keys", "load_signer", "moved", "new_run_id",
    "policy_copies", "previous_run", "prune_tenant", "read_head", "read_snapshot", "rebound", "resolve_pair",
    "runs", "safe_name", "sealed_run_around", "sha256_file", "stored_tenants", "strict_loads", "tenant_dirs",
    "verify_chain", "verify_chain_with_ledger", "verify_run", "write_snapshot",
]
