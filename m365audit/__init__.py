"""m365audit: a nightly, evidence-keeping Microsoft 365 tenant compliance auditor."""

__version__ = "0.1.0"
