"""A Graph simulator for tests and benchmarks (127.0.0.1 only); not part of an audit."""

from m365audit.simulator.server import GraphSimulator, SimConfig
from m365audit.simulator.shapes import TenantSpec
from m365audit.simulator.tenant import SimTenant

__all__ = ["GraphSimulator", "SimConfig", "SimTenant", "TenantSpec"]
