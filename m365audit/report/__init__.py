"""Report: the findings document, report.html, report.md and junit.xml, in Dutch and English."""

from m365audit.report.hints_nl import in_lang
from m365audit.report.pseudonymise import Pseudonymiser, load_key
from m365audit.report.writer import (
           Evidence,
           counts,
           findings_document,
           md_escape,
           ordered,
           template_environment,
           verdict,
           write_reports,
)

__all__ = ["Evidence", "Pseudonymiser", "counts", "findings_document", "in_lang", "load_key", "md_escape", "ordered",
           "template_environment", "verdict", "write_reports"]
