"""Named simulator configurations.

`deepseek-v3` is a small serving cluster scaled down so that it runs on two CPU cores: a 20 ms
decode step at low batch that grows by 0.3 ms per running sequence (so aggregate throughput rises
with concurrency and saturates at the batch limit of 64). `fast` has a tiny step time: it exists to
measure how many tokens/s a client can take in, with the simulator far from being the limit.
"""

from __future__ import annotations

from .config import SimConfig, SimConfigError, validate

_V3 = SimConfig(
    preset="deepseek-v3",
    model="deepseek-ai/DeepSeek-V3",
    max_num_seqs=64,
    prefill_tps=20000.0,
    step_base_ms=20.0,
    step_per_seq_ms=0.3,
)

PRESETS: dict[str, SimConfig] = {
    "deepseek-v3": _V3,
    "deepseek-r1": _V3.replace(preset="deepseek-r1", model="deepseek-ai/DeepSeek-R1", reasoning_tokens=32),
    "deepseek-v3-mtp": _V3.replace(preset="deepseek-v3-mtp", tokens_per_step=2, step_base_ms=24.0),
    "fast": SimConfig(
        preset="fast",
        model="deepseek-ai/DeepSeek-V3",
        max_num_seqs=1024,
        prefill_tps=1e8,
        step_base_ms=1.0,
        step_per_seq_ms=0.0,
        max_lag_ms=5.0,
    ),
}

for _config in PRESETS.values():
    validate(_config)


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(PRESETS)


def get_preset(name: str) -> SimConfig:
    """The preset called `name`; SimConfigError listing the presets otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise SimConfigError(f"unknown sim preset {name!r}; presets: {', '.join(preset_names())}") from None
