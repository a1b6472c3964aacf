"""The policy pack as data: load and validate rules, catalogs, waivers, attestations and params (file:line errors)."""
