"""A Graph simulator for tests and benchmarks (127.0.0.1 only); not part of an audit."""
