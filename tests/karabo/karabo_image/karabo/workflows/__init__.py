"""Test stand-in for the Karabo image's ``karabo`` package (see ../README.md)."""
