"""Drift: what changed since the previous night, the tenant history and the alerts that tell someone."""

from m365audit.drift.history import refresh_index, resolve_tenant, tenant_history, tenant_name, write_index
from m365audit.drift.nights import DriftReport, compare, compare_with_previous, current_run, load_run
from m365audit.drift.notify import SECRET_ENV, NotifyRecord, alert, record_bytes
from m365audit.drift.overview import write_overview
from m365audit.drift.text import context, drift_bytes, headline, is_regression_line, summary_lines, word

__all__ = [
    "SECRET_ENV", "DriftReport", "NotifyRecord", "alert", "compare", "compare_with_previous", "context",
    "current_run", "drift_bytes", "headline", "is_regression_line", "load_run", "record_bytes", "refresh_index",
    "resolve_tenant",
    "summary_lines", "tenant_history", "tenant_name", "word", "write_index", "write_overview",
]
