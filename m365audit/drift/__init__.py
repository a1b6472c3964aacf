"""Drift: what changed since the previous night, the tenant history and the alerts that tell someone."""

from m365audit.drift.alert_text import AlertMessage, cause_line, report_link
from m365audit.drift.alerts import (
    INCOMPLETE_NIGHTS,
    PERMISSION_MISSING,
    REMIND_EVERY,
    STATE_FILE,
    AlertState,
    Cause,
    advance,
    due,
    failed_cause,
    load_state,
    run_causes,
    save_state,
    with_incomplete,
)
from m365audit.drift.history import refresh_index, resolve_tenant, tenant_history, tenant_name, write_index
from m365audit.drift.nights import DriftReport, compare, compare_with_previous, current_run, load_run
from m365audit.drift.notify import (
    SECRET_ENV,
    NotifyRecord,
    check_targets,
    check_urls,
    default_settings,
    deliver,
    failed_record,
    record_bytes,
)
from m365audit.drift.overview import write_overview
from m365audit.drift.text import (
    context,
    drift_bytes,
    headline,
    is_regression_line,
    summary_lines,
    word,
)

__all__ = [
    "AlertMessage", "AlertState", "Cause", "DriftReport", "INCOMPLETE_NIGHTS", "NotifyRecord", "PERMISSION_MISSING",
    "REMIND_EVERY", "SECRET_ENV", "STATE_FILE", "advance", "cause_line", "check_targets", "check_urls", "compare",
    "compare_with_previous", "context", "current_run", "default_settings", "deliver", "drift_bytes", "due",
    "failed_cause", "failed_record", "headline", "is_regression_line", "load_run", "load_state", "record_bytes",
    "refresh_index", "report_link", "resolve_tenant", "run_causes", "save_state", "summary_lines", "tenant_history",
    "tenant_name", "with_incomplete", "word", "write_index", "write_overview",
]
