"""Drift: what changed since the previous night, the tenant history and the alerts that tell someone."""
