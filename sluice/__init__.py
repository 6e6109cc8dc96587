"""Sluice: meter huge batch sweeps into Kubernetes, Nomad or local processes."""
