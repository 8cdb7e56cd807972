"""A 60 s soak in CI: the gate's client held at steady load against the simulator in another process.

The tolerances hold on a busy 2-core machine; they catch plumbing faults (failed requests, a records
file that misses or repeats requests, memory that runs away, a load that is not held), not drift of
1%: `benchmarks/soak.py` prints those figures over 10 or 60 minutes. Deselect with -m 'not soak'.
"""

from __future__ import annotations

import pytest

from pytest_deepseek.testing.soak import SoakConfig, count_lines, first_window, last_window, pooled, run_soak, summarize

pytestmark = pytest.mark.soak

# ~1,600 output tok/s: 8 streams of 32..96-token answers at 200 tokens/s each.
CONFIG = SoakConfig(duration_s=60, interval_s=5, concurrency=8, input_len=64, output_len=64, warmup_s=15)
RSS_GROWTH_MB = 30.0  # after the warm-up; the records held for judging take ~3 MB of it
THROUGHPUT_BAND = 0.25  # last 20 s against the first 20 s


def test_sixty_seconds_at_steady_load(tmp_path):
    run = run_soak(CONFIG, tmp_path)
    summary = summarize(run.intervals, CONFIG)

    assert len(run.intervals) == 12 and not run.ran_out
    assert run.failed == 0 and summary.failed == 0
    assert all(i.completed > 0 for i in run.intervals), [i.completed for i in run.intervals]
    assert count_lines(run.records_path) == run.finished  # one line per finished request, warmup included
    assert run.finished >= summary.completed + CONFIG.concurrency

    assert summary.rss_base_s >= CONFIG.warmup_s
    assert summary.rss_growth_mb < RSS_GROWTH_MB, summary
    assert 0 < summary.held_growth_mb < RSS_GROWTH_MB

    first = pooled(first_window(run.intervals, 4)).output_tok_s
    last = pooled(last_window(run.intervals, 4)).output_tok_s
    assert first is not None and last is not None and first > 500, (first, last)
    assert abs(last / first - 1) <= THROUGHPUT_BAND, (first, last)


@pytest.mark.usefixtures("full_disk")
def test_a_failed_spill_is_a_warning_of_the_soak_even_for_dropped_records(tmp_path):
    config = SoakConfig(duration_s=6, interval_s=2, concurrency=4, input_len=32, output_len=16, warmup_s=1,
                        drop_records=True)
    run = run_soak(config, tmp_path)
    assert run.failed == 0 and count_lines(run.records_path) == run.finished
    assert run.warnings and all("No space left on device" in w for w in run.warnings), run.warnings
