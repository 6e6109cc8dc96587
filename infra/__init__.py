"""Job specs and templates (nomad/, kubernetes/), installed as package data ``sluice.infra``."""
