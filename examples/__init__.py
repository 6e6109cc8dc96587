"""Examples and the stand-ins flows run, installed as package data ``sluice.examples``."""
