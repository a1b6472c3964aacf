"""Operations around audits: many tenants from one config, recording a tenant as a fixture to share."""
