"""Collect: the SOURCES table, reading every source as ok or error, and the Graph permissions they need."""
