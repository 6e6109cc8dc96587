"""Watershed batches below Prefect: inputs, run directories, stages, locks."""
