"""STAC batches below Prefect: inputs, admission, stages, outputs, reports."""
