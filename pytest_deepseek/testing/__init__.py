"""Helpers for the project's tests and benchmarks: synthetic runs with a known truth, and the
comparison of client measurements with the simulator's emit log. The runtime never imports them."""
