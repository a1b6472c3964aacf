"""Check functions for rules YAML conditions cannot express, by name: rules say check: {function: NAME}."""

from __future__ import annotations

from m365audit.evaluate.checks.agents import (
    copilot_agents_not_deployed,
    copilot_metered_usage_none,
    teams_org_apps_reviewed,
)
from m365audit.evaluate.checks.apps import ai_apps_no_org_data_access, apps_tenant_wide_data_access_approved
from m365audit.evaluate.checks.base import CheckFn, CheckInput, ShapeError, fail_closed
from m365audit.evaluate.checks.conditional_access import ca_blocks_copilot_apps
from m365audit.evaluate.checks.consent import consent_owners_cannot_grant_team_data, consent_users_cannot_grant_org_data
from m365audit.evaluate.checks.intune import intune_setting_enforced
from m365audit.evaluate.checks.licence_facts import FACTS_KEY, facts_writer
from m365audit.evaluate.checks.licences import (
    ai_plans_in_catalog,
    copilot_subscriptions_absent,
    plans_need_attestation,
    service_plans_not_assigned,
)
from m365audit.evaluate.checks.routes import (
    ai_apps_no_sign_ins,
    apps_user_consent_org_data_approved,
    microsoft_ai_apis_not_granted,
    teams_rsc_grants_none,
)
from m365audit.evaluate.checks.settings import copilot_policy_setting
from m365audit.evaluate.checks.usage import audit_no_ai_interactions, copilot_usage_none

__all__ = ["CHECKS", "PAGE_FACTS", "CheckFn", "CheckInput", "ShapeError"]

PAGE_FACTS = {"users": {FACTS_KEY: facts_writer}}
"""Per source, what checks take from each page while it is collected (collect's ``page_facts``)."""

CHECKS: dict[str, CheckFn] = {
    fn.__name__: fail_closed(fn)
    for fn in (
        service_plans_not_assigned,
        copilot_subscriptions_absent,
        consent_users_cannot_grant_org_data,
        consent_owners_cannot_grant_team_data,
        ai_plans_in_catalog,
        ai_apps_no_org_data_access,
        apps_tenant_wide_data_access_approved,
        ca_blocks_copilot_apps,
        intune_setting_enforced,
        copilot_usage_none,
        audit_no_ai_interactions,
        copilot_policy_setting,
        plans_need_attestation,
        copilot_agents_not_deployed,
        teams_org_apps_reviewed,
        copilot_metered_usage_none,
        apps_user_consent_org_data_approved,
        microsoft_ai_apis_not_granted,
        teams_rsc_grants_none,
        ai_apps_no_sign_ins,
    )
}
