"""Serving pipeline: streaming client, workloads, load generation, metrics, contract checks."""
