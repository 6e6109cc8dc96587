"""Sluice's Prefect flows. Importing them routes Sluice's own warnings to flow-run logs."""

from sluice.tasks.logs import route_sluice_logs

route_sluice_logs()
