"""The tiny bundled datasets: in sync with their source items, in each backend's layout."""

from __future__ import annotations

import csv
import json

import pytest

from pytest_deepseek.accuracy import bundled_datasets_dir
from pytest_deepseek.accuracy.bundled import ANSWER_KEY, expected_files, load_items
from pytest_deepseek.accuracy.spec import ACCURACY_DATASETS


def test_bundled_files_match_their_builders() -> None:
    stale = [str(p) for p, text in expected_files().items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    assert stale == [], "run `python -m pytest_deepseek.accuracy.bundled` to rewrite them"


def test_evalscope_layout() -> None:
    root = bundled_datasets_dir("evalscope")
    row = json.loads((root / "general_mcq" / "cluewsc_dev_val.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(row) == {"id", "question", "A", "B", "answer"} and row["answer"] in "AB"
    assert "config_name: all" in (root / "mmlu" / "README.md").read_text()
    math = json.loads((root / "math_500" / "test.jsonl").read_text().splitlines()[0])
    assert {"problem", "answer", "level", "unique_id", "solution"} <= set(math)


def test_opencompass_layout() -> None:
    root = bundled_datasets_dir("opencompass") / "data"
    row = json.loads((root / "FewCLUE/cluewsc/test_public.json").read_text(encoding="utf-8").splitlines()[0])
    assert set(row["target"]) == {"span1_text", "span2_text", "span1_index", "span2_index"}
    assert row["label"] in ("true", "false")
    assert row["text"][row["target"]["span1_index"]:].startswith(row["target"]["span1_text"])
    with (root / "mmlu/test/astronomy_test.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert all(len(r) == 6 and r[5] in "ABCD" for r in rows)
    assert "\\boxed{" in json.loads((root / "math/test_prm800k_500.jsonl").read_text().splitlines()[0])["solution"]


def test_answer_key_covers_every_item_once() -> None:
    key = [json.loads(line) for line in ANSWER_KEY.read_text(encoding="utf-8").splitlines()]
    assert len({k["id"] for k in key}) == len(key) == sum(len(load_items(d)) for d in ACCURACY_DATASETS)
    assert all(k["answer"] != k["wrong"] for k in key)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="known: evalscope"):
        bundled_datasets_dir("helm")


def test_evalscope_layout_has_the_shape_evalscope_accepted(results_dir) -> None:
    # The seeds' real evalscope run read these tiny sets; ours must carry the same files and fields.
    real = results_dir / "tiny-datasets-evalscope-layout"
    ours = bundled_datasets_dir("evalscope")

    def fields(path):
        return set(json.loads(path.read_text(encoding="utf-8").splitlines()[0]))

    assert fields(ours / "math_500/test.jsonl") == fields(real / "math_500/test.jsonl")
    assert fields(ours / "mmlu/all/test.jsonl") == fields(real / "mmlu/all/test.jsonl")
    assert fields(ours / "general_mcq/cluewsc_dev_val.jsonl") == fields(real / "gmcq/cluewsc_val.jsonl")
    assert (ours / "mmlu/README.md").read_text() == (real / "mmlu/README.md").read_text()
