"""Report: the findings document, report.html, report.md and junit.xml, in Dutch and English."""

from m365audit.report.pseudonymise import Pseudonymiser, load_key
from m365audit.report.vocabulary import SEVERITIES, STATUSES, labels
from m365audit.report.writer import (
           Evidence,
           counts,
           findings_document,
           ordered,
           template_environment,
           verdict,
           write_reports,
)

__all__ = ["SEVERITIES", "STATUSES", "labels", "Evidence", "Pseudonymiser", "counts", "findings_document", "load_key", "ordered", "template_environment",
           "verdict", "write_reports"]
