"""Delegated-only Copilot admin policy settings, judged only on values a rule lists."""

from __future__ import annotations

from m365audit.evaluate.checks.base import (
    CheckInput,
    ShapeError,
    failed,
    items_of,
    outcome,
    param_of,
    passed,
)
from m365audit.models import CheckOutcome, FindingObject, Status

# --------------------------------------------------------------------------- delegated-only Copilot settings


def copilot_policy_setting(inp: CheckInput) -> CheckOutcome:
    """A Copilot admin policy setting (delegated read) holds a value listed as compliant; unknown values are error.

    The value encodings are unconfirmed (graph-surface.md §7.3), so only values the rule lists count: a value in
    compliant_values passes, one in noncompliant_values (null = not configured, Microsoft's default) fails, any
    other value is error with the raw value, to be classified in params.yaml.
    """
    setting_id = param_of(inp, "setting", str)
    compliant = param_of(inp, "compliant_values", list)
    noncompliant = param_of(inp, "noncompliant_values", list)
    found = [s for s in items_of(inp, "copilot_policy_settings") if s.get("id") == setting_id]
    if len(found) != 1:
        raise ShapeError(f"setting {setting_id} was not in the answer (found {len(found)})")
    value, policy = found[0].get("value"), found[0].get("policyId")
    shown = "null (not configured)" if value is None else repr(value)
    shown_nl = "null (niet ingesteld)" if value is None else repr(value)
    obj = FindingObject(id=setting_id, name=setting_id, detail=f"value {shown}; tenant policy {policy or 'none'}")
    if value is not None and value in compliant:
        return passed(f"{setting_id} staat op {shown_nl} (tenantbeleid {policy or 'geen'}).",
                     f"{setting_id} is {shown} (tenant policy {policy or 'none'}).", [obj])
    if value in noncompliant:
        return failed(f"{setting_id} staat op {shown_nl}: Copilot mag dit.",
                     f"{setting_id} is {shown}: Copilot may do this.", [obj])
    return outcome(
        Status.ERROR,
        f"Onbekende waarde {shown_nl} voor {setting_id}: de codering is niet bevestigd. Classificeer haar in "
        "params.yaml (compliant_values of noncompliant_values).",
        f"Unknown value {shown} for {setting_id}: the encoding is unconfirmed. Classify it in params.yaml "
        "(compliant_values or noncompliant_values).", [obj])
