"""Report: the findings document, report.html, report.md and junit.xml, in Dutch and English."""
