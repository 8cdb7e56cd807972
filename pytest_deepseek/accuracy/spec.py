"""The accuracy part of the thresholds file: its names and its schema fragment."""

from __future__ import annotations

from typing import Any

from ..schema import CONFIDENCE, NONNEG_INT, POSITIVE_INT, Flag, ListOf, Mapping_, Number, SchemaError, Text

EVALSCOPE, OPENCOMPASS, LM_EVAL = "evalscope", "opencompass", "lm-eval"
ACCURACY_BACKENDS = (EVALSCOPE, OPENCOMPASS, LM_EVAL)

# The gate's names of the datasets it ships tiny copies of and knows how to ask in every backend
# (other names pass through to the backend unchanged; `names.py` maps them per backend).
CLUEWSC_DEV, CLUEWSC_TEST, MATH_500, MMLU = "cluewsc-dev", "cluewsc-test", "math_500", "mmlu"
CLUEWSC_SETS = (CLUEWSC_DEV, CLUEWSC_TEST)
ACCURACY_DATASETS = (*CLUEWSC_SETS, MATH_500, MMLU)


_ACCURACY_DATASET = Mapping_(
    fields={
        "name": Text(),
        "metric": Text(),
        "subset": Text(),
        "min": Number(minimum=0, maximum=100),
        "reference": Number(minimum=0, maximum=100),
        "tolerance": Number(minimum=0, maximum=100),
        "reference_results": Text(),
        "spread": Number(minimum=0, exclusive_minimum=True),
        "expected_items": POSITIVE_INT,
        "version": Text(),
        "config_hash": Text(),
        "confidence": CONFIDENCE,
        "description": Text(),
    },
    required=("name",),
    what="accuracy dataset",
)


def _check_accuracy_dataset(values: dict[str, Any], path: tuple[str | int, ...]) -> None:
    if "min" not in values and "reference" not in values and "reference_results" not in values:
        raise SchemaError(path, f"dataset {values.get('name')!r} needs min:, or reference: (with tolerance:), "
                                "or reference_results:")
    if "tolerance" in values and "reference" not in values:
        raise SchemaError(path, "tolerance: goes with reference:")


_ACCURACY_DATASET.validate = _check_accuracy_dataset

ACCURACY_SECTION = Mapping_(
    fields={
        "backend": Text(choices=ACCURACY_BACKENDS),
        "datasets": ListOf(item=_ACCURACY_DATASET, min_items=1),
        "generation": Mapping_(
            fields={"temperature": Number(minimum=0, maximum=2), "top_p": Number(minimum=0, maximum=1),
                    "max_tokens": POSITIVE_INT, "repeats": POSITIVE_INT, "seed": NONNEG_INT,
                    "concurrency": POSITIVE_INT, "timeout_s": Number(minimum=0), "retries": NONNEG_INT},
            what="generation settings",
        ),
        "endpoint": Text(),
        "model": Text(),
        "data": Text(),
        "results": Text(),
        "limit": POSITIVE_INT,
        "example": Flag(),
        "description": Text(),
    },
    required=("backend", "datasets"),
    what="accuracy section",
)
