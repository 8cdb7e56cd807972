"""The engine model, pure: step times, batching, queueing, prefill, MTP, determinism."""

from __future__ import annotations

from pytest_deepseek.sim.engine import EngineModel, EngineParams, SimRequest, simulate

MS = 1_000_000
P = EngineParams(max_num_seqs=64, prefill_tps=10_000.0, step_base_ns=20 * MS, step_per_seq_ns=MS // 2)


def test_single_sequence_steps_are_base_plus_one_seq() -> None:
    (emits,) = simulate(P, [SimRequest(0, 0, 5)])
    times = [t for t, _ in emits]
    assert [n for _, n in emits] == [1] * 5
    assert times[0] == 20 * MS + MS // 2
    assert {b - a for a, b in zip(times, times[1:])} == {20 * MS + MS // 2}


def test_step_time_grows_with_batch_and_throughput_saturates() -> None:
    def throughput(n: int, params: EngineParams = P) -> float:
        schedules = simulate(params, [SimRequest(0, 0, 20) for _ in range(n)])
        end = max(t for s in schedules for t, _ in s)
        return n * 20 / (end / 1e9)

    gaps = {}
    for n in (1, 8, 32):
        schedule = simulate(P, [SimRequest(0, 0, 4) for _ in range(n)])[0]
        gaps[n] = schedule[1][0] - schedule[0][0]
    assert gaps == {1: 20 * MS + MS // 2, 8: 24 * MS, 32: 36 * MS}
    t1, t8, t64, t128 = throughput(1), throughput(8), throughput(64), throughput(128)
    assert t1 < t8 < t64
    assert abs(t128 - t64) / t64 < 0.02  # batch limit 64: more clients only queue


def test_batch_limit_queues_fifo() -> None:
    params = EngineParams(max_num_seqs=2, prefill_tps=1e9, step_base_ns=10 * MS, step_per_seq_ns=0)
    a, b, c, d = simulate(params, [SimRequest(0, 0, 3) for _ in range(4)])
    assert [t for t, _ in a] == [t for t, _ in b] == [10 * MS, 20 * MS, 30 * MS]
    assert c[0][0] == d[0][0] == 40 * MS  # admitted at the step after a and b finished
    model = EngineModel(params)
    for i in range(5):
        model.submit(i, 0, 0, 3)
    model.plan_step(0)
    assert (model.num_running, model.num_waiting) == (2, 3)


def test_prefill_time_and_chunked_prefill() -> None:
    (whole,) = simulate(P, [SimRequest(0, 1000, 2)])
    assert whole[0][0] == 20 * MS + MS // 2 + 100 * MS  # 1000 tokens at 10k tokens/s
    chunked = EngineParams(max_num_seqs=64, prefill_tps=10_000.0, prefill_chunk=256, step_base_ns=20 * MS,
                           step_per_seq_ns=MS // 2)
    (parts,) = simulate(chunked, [SimRequest(0, 1000, 2)])
    # four prefill steps (256, 256, 256, 232 tokens); the first token comes at the end of the fourth
    expected = 3 * 20 * MS + 768 * 100_000 + 20 * MS + MS // 2 + 232 * 100_000
    assert parts[0][0] == expected


def test_arrival_during_a_step_joins_the_next_one() -> None:
    params = EngineParams(max_num_seqs=8, prefill_tps=1e9, step_base_ns=10 * MS, step_per_seq_ns=0)
    first, late = simulate(params, [SimRequest(0, 0, 4), SimRequest(3 * MS, 0, 2)])
    assert [t for t, _ in first] == [10 * MS, 20 * MS, 30 * MS, 40 * MS]
    assert [t for t, _ in late] == [20 * MS, 30 * MS]


def test_idle_engine_starts_at_arrival() -> None:
    params = EngineParams(max_num_seqs=8, prefill_tps=1e9, step_base_ns=10 * MS, step_per_seq_ns=0)
    _, later = simulate(params, [SimRequest(0, 0, 1), SimRequest(500 * MS, 0, 1)])
    assert later == [(510 * MS, 1)]


def test_mtp_emits_several_tokens_per_step() -> None:
    params = EngineParams(tokens_per_step=3, step_base_ns=10 * MS, step_per_seq_ns=0, prefill_tps=1e9)
    (emits,) = simulate(params, [SimRequest(0, 0, 10)])
    assert [n for _, n in emits] == [1, 3, 3, 3]
    assert sum(n for _, n in emits) == 10


def test_abort_frees_the_slot() -> None:
    params = EngineParams(max_num_seqs=1, prefill_tps=1e9, step_base_ns=10 * MS, step_per_seq_ns=0)
    model = EngineModel(params)
    model.submit(1, 0, 0, 100)
    model.submit(2, 0, 0, 1)
    step = model.plan_step(0)
    assert step is not None and step.emits == ((1, 1),)
    assert model.abort(1) and not model.abort(1)
    step = model.plan_step(step.end_ns)
    assert step is not None and step.emits == ((2, 1),) and step.finished == {2}
    assert model.ready_at() is None


def test_zero_output_sequence_ends_after_prefill() -> None:
    (emits,) = simulate(P, [SimRequest(0, 10, 0)])
    assert [n for _, n in emits] == [0]


def test_schedule_is_deterministic() -> None:
    reqs = [SimRequest(i * 3 * MS, 50 + i, 5 + i % 7) for i in range(100)]
    assert simulate(P, reqs) == simulate(P, list(reqs))
