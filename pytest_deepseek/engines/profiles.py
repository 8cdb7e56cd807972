"""Thresholds profiles for the tiny DeepSeek-V3 on real CPU servers (CI, and local tries by hand).

Floors are an order of magnitude below what a 2-core CPU machine measures (vLLM: about 180-280,
700 and 1,000 output tok/s at 1, 8 and 32 streams). Throughput batches are sized from the
measured autocorrelation time, never shorter than `checks.MIN_BATCH_S`; the vLLM profile sets
`min_batch_s: 0.5` and runs each scenario for about 10-20 s, which decides the floors at 8 and 32
streams. A single
stream's token series is periodic (one request after another) and the batch-means estimator often
cannot size its batches in 20 s, so the profiles allow an undecided floor (reported, not failed).
"""

from __future__ import annotations

VLLM_PROFILE = "vllm-cpu-ci"
TRANSFORMERS_PROFILE = "transformers-serve-ci"
VLLM_OUTPUT_LEN = 64
TRANSFORMERS_OUTPUT_LEN = 32
# transformers serve decodes on the same two cores as the client, a whole core or more while it
# runs, so the client's event loop can wait its turn: with a busy neighbour, stalls over 50 ms took
# 2-3% of a 7-16 s scenario (the longest 136-159 ms) and the default 1% made both scenarios ERROR
# "client-bound". Such stalls cannot move the one figure this profile checks (2 output tok/s over
# the run, against 12-28 measured); the other limits stay the defaults.
TRANSFORMERS_CLIENT_HEALTH = "{max_stalled_fraction: 0.1}"
# concurrency, prompts, output tok/s floor, TPOT p50 ceiling (ms)
VLLM_SCENARIOS = ((1, 48, 18, 100), (8, 96, 70, 200), (32, 256, 100, 500))


def vllm_profile(model: str) -> str:
    """A thresholds file with the `vllm-cpu-ci` profile: completions and chat at concurrency 1, 8, 32."""
    lines = [
        "version: 1",
        "profiles:",
        f"  {VLLM_PROFILE}:",
        f"    model: {model}",
        "    engine: vllm",
        "    hardware: cpu",
        "    nodes: 1",
        "    devices_per_node: 1",
        "    serving:",
        f"      defaults: {{dataset: random, input_len: 128, output_len: {VLLM_OUTPUT_LEN}, warmup: 2,"
        " force_output_len: true, min_batch_s: 0.5, allow_inconclusive: true}",
        "      scenarios:",
    ]
    for api in ("completions", "chat"):
        for concurrency, prompts, floor, tpot in VLLM_SCENARIOS:
            lines.append(f"        - {{api: {api}, concurrency: {concurrency}, num_prompts: {prompts}, "
                         f"floors: {{output_throughput: {floor}}}, ceilings: {{tpot_ms.p50: {tpot}}}}}")
    return "\n".join(lines) + "\n"


def transformers_profile(model: str, forced: bool = False) -> str:
    """A thresholds file with the `transformers-serve-ci` profile: one stream, completions and chat.

    transformers serve rejects ignore_eos/min_tokens, so lengths are only forced when asked to.
    """
    return (
        "version: 1\n"
        "profiles:\n"
        f"  {TRANSFORMERS_PROFILE}:\n"
        f"    model: {model}\n"
        "    engine: transformers-serve\n"
        "    hardware: cpu\n"
        "    serving:\n"
        f"      defaults: {{dataset: random, input_len: 64, output_len: {TRANSFORMERS_OUTPUT_LEN}, warmup: 1,"
        f" num_prompts: 6, concurrency: 1, force_output_len: {'true' if forced else 'false'},"
        f" allow_inconclusive: true, client_health: {TRANSFORMERS_CLIENT_HEALTH}}}\n"
        "      scenarios:\n"
        "        - {api: completions, floors: {output_throughput: 2}}\n"
        "        - {api: chat, floors: {output_throughput: 2}}\n"
    )


def profile_for(kind: str, model: str) -> tuple[str, str]:
    """(profile name, thresholds file text) for a server kind."""
    if kind == "vllm":
        return VLLM_PROFILE, vllm_profile(model)
    return TRANSFORMERS_PROFILE, transformers_profile(model)
