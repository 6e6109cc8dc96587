"""`sluice watersheds` commands (not built yet)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this flow's commands to the `sluice` app."""
