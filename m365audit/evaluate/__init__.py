"""Evaluate: a pure function from a snapshot and a policy pack to findings (operators and check functions)."""

from m365audit.evaluate.checks import CHECKS, PAGE_FACTS
from m365audit.evaluate.engine import evaluate, evaluate_rule, rule_needs
from m365audit.evaluate.pack import load_pack

__all__ = ["CHECKS", "PAGE_FACTS", "evaluate", "evaluate_rule", "load_pack", "rule_needs"]
