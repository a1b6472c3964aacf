"""One audit from sign-in to sealed run folder: collect, evaluate, report, drift, notify."""

from m365audit.audit.runner import EXIT_BY_VERDICT, AuditOptions, ProgressSink, run_audit

__all__ = ["EXIT_BY_VERDICT", "AuditOptions", "ProgressSink", "run_audit"]
