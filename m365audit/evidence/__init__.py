"""Evidence: the exchange store, collected pages, the run folder and its lock, the manifest, verify and prune."""

from m365audit.evidence.exchanges import ExchangeRef, ExchangeSink, ExchangeStore, RecordedExchange, exchange_refs
from m365audit.evidence.files import MANIFEST, latest_run, new_run_id, runs, safe_name, sha256_file
from m365audit.evidence.items import ItemsError, ItemsWriter, PagedItems, first_non_object, is_list
from m365audit.evidence.prune import prune_tenant, tenant_dirs, verify_chain_with_ledger
from m365audit.evidence.runfolder import RunFolder, interrupted_runs, policy_copies
from m365audit.evidence.runpaths import previous_run, resolve_pair
from m365audit.evidence.snapshot_file import moved, read_head, read_snapshot, rebound, write_snapshot
from m365audit.evidence.strictjson import MAX_DEPTH, STORED_DEPTH, MalformedJson
from m365audit.evidence.strictjson import loads as strict_loads
from m365audit.evidence.verify import VerifyReport, verify_chain, verify_run

__all__ = [
    "MANIFEST", "ExchangeRef", "ExchangeSink", "ExchangeStore", "ItemsError", "ItemsWriter", "PagedItems",
    "RecordedExchange", "RunFolder", "VerifyReport", "exchange_refs", "first_non_object", "interrupted_runs",
    "is_list", "latest_run", "moved", "new_run_id", "policy_copies", "previous_run", "prune_tenant", "read_head",
    "read_snapshot", "rebound", "resolve_pair", "runs", "safe_name", "sha256_file", "tenant_dirs", "verify_chain",
    "verify_chain_with_ledger", "verify_run", "write_snapshot",
]
__all__ += ["MAX_DEPTH", "STORED_DEPTH", "MalformedJson", "strict_loads"]  # the strict JSON parser (issue 13)
