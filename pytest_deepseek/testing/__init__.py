"""Helpers for the project's tests and benchmarks: synthetic runs with a known truth, and the
comparison of client measurements with the simulator's emit log. The runtime never imports them."""

# Client-health limits (a thresholds `client_health:` mapping, in YAML flow style) that a busy 2-core
# CI machine meets, for tests of plumbing rather than of the client's timing: about ten times the
# schedule lag such a box shows with other work on it.
LOADED_BOX = ("{max_loop_lag_p99_ms: 200, max_stalled_fraction: 0.2, max_schedule_lag_p99_ms: 200, "
              "min_rate_ratio: 0.5, min_concurrency_ratio: 0.5, max_cpu_fraction: 2}")
