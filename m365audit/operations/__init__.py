"""Operations around audits: many tenants from one config, recording a tenant as a fixture to share."""

from m365audit.operations.record import pseudonymise
from m365audit.operations.tenants import audit_all, load_config, summary_table, worst

__all__ = ["audit_all", "load_config", "pseudonymise", "summary_table", "worst"]
