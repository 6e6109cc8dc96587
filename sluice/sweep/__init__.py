"""The tiered index sweep.

Replaces wetlands' orchestrate_indices.py and restart_failed_indices.py.
"""
