"""A Nomad HTTP API test double (no Nomad binary exists on these machines)."""
