"""Alembic migrations of the ledger's schema; applied by ``sluice.ledger.migrate`` on open."""
