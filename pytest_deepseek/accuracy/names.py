"""Dataset names across backends.

The gate speaks one name per dataset (`cluewsc-dev`, `math_500`, `mmlu`, ...). Each backend has its
own: evalscope puts CLUEWSC in a `general_mcq` subset, OpenCompass spells MATH-500 `math-500` and
splits MMLU into `lukaemon_mmlu_<subject>` sets. Names not listed here pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import CLUEWSC_DEV, CLUEWSC_TEST, MATH_500, MMLU

MMLU_PREFIX = "lukaemon_mmlu_"
# The FewCLUE files OpenCompass reads CLUEWSC from (under `data/FewCLUE/cluewsc/`).
OPENCOMPASS_CLUEWSC_FILES = {CLUEWSC_DEV: "dev_few_all.json", CLUEWSC_TEST: "test_public.json"}


@dataclass(frozen=True)
class EvalscopeName:
    """An evalscope benchmark and, for `general_mcq`, the subset (the `<subset>_val.jsonl` file)."""

    benchmark: str
    subset: str | None = None


_EVALSCOPE = {
    CLUEWSC_DEV: EvalscopeName("general_mcq", "cluewsc_dev"),
    CLUEWSC_TEST: EvalscopeName("general_mcq", "cluewsc_test"),
}
_EVALSCOPE_SUBSETS = {(v.benchmark, v.subset): k for k, v in _EVALSCOPE.items()}

_OPENCOMPASS = {MATH_500: "math-500"}
_OPENCOMPASS_BACK = {v: k for k, v in _OPENCOMPASS.items()}

_LM_EVAL = {
    CLUEWSC_DEV: "deepseek_cluewsc_dev",
    CLUEWSC_TEST: "deepseek_cluewsc_test",
    MATH_500: "deepseek_math_500",
    MMLU: "deepseek_mmlu",
}
_LM_EVAL_BACK = {v: k for k, v in _LM_EVAL.items()}


def to_evalscope(name: str) -> EvalscopeName:
    """The evalscope benchmark (and subset) that scores `name`."""
    return _EVALSCOPE.get(name, EvalscopeName(name))


def from_evalscope(benchmark: str, subset: str | None = None) -> str:
    """The gate's name for an evalscope benchmark, or for one `general_mcq` subset."""
    if benchmark == "general_mcq" and subset is not None:
        return _EVALSCOPE_SUBSETS.get((benchmark, subset), subset)
    return benchmark


def to_opencompass(name: str) -> str:
    """The OpenCompass dataset abbreviation; `mmlu` stands for all `lukaemon_mmlu_*` sets."""
    return _OPENCOMPASS.get(name, name)


def from_opencompass(abbr: str) -> str:
    """The gate's name for an OpenCompass abbreviation (every MMLU subject maps to `mmlu`)."""
    if abbr.startswith(MMLU_PREFIX):
        return MMLU
    return _OPENCOMPASS_BACK.get(abbr, abbr)


def to_lm_eval(name: str) -> str:
    """The lm-eval task name (the bundled task files use these names)."""
    return _LM_EVAL.get(name, name)


def from_lm_eval(task: str) -> str:
    """The gate's name for an lm-eval task."""
    return _LM_EVAL_BACK.get(task, task)
