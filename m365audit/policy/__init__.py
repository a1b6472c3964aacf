"""The policy pack as data: load and validate rules, catalogs, waivers, attestations and params (file:line errors)."""

from m365audit.policy.loader import default_policy_dir, load_pack, rule_params
from m365audit.policy.schema import SCHEMA_COMMAND, SCHEMA_FILE, pack_schema

__all__ = ["SCHEMA_COMMAND", "SCHEMA_FILE", "default_policy_dir", "load_pack", "pack_schema", "rule_params"]
