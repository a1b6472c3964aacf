"""The policy pack as this evaluator can run it: the loader checks every check.function against CHECKS."""

from __future__ import annotations

from pathlib import Path

from m365audit.evaluate.checks import CHECKS
from m365audit.models import PolicyPack
from m365audit.policy import load_pack as load_policy_pack


def load_pack(folder: Path | None = None, local: Path | None = None, strict: bool = False) -> PolicyPack:
    """Load and validate a policy folder (see policy.load_pack) with this evaluator's check functions."""
    return load_policy_pack(folder, local, strict, check_functions=CHECKS)
