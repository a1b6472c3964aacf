"""Evaluate: a pure function from a snapshot and a policy pack to findings (operators and check functions)."""
