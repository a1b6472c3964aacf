"""Report: the findings document, report.html, report.md, junit.xml and the exports, in Dutch and English."""

from m365audit.report.hints_nl import in_lang
from m365audit.report.pseudonymise import Pseudonymiser, load_key
from m365audit.report.vocabulary import SEVERITIES, STATUSES, VERDICT_WORDS, counts, labels, ordered, verdict
from m365audit.report.writer import Evidence, findings_document, md_escape, template_environment, write_reports

__all__ = ["SEVERITIES", "STATUSES", "VERDICT_WORDS", "Evidence", "Pseudonymiser", "counts", "findings_document",
           "in_lang", "labels", "load_key", "md_escape", "ordered", "template_environment", "verdict", "write_reports"]
