"""Fuzz suites: the parsers of streams, thresholds, training logs and result folders never crash."""
