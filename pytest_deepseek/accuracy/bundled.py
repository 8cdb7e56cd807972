"""Tiny bundled datasets, written in each backend's local layout, and their answer key.

The source of truth is `data/eval/items/<dataset>.jsonl` (cluewsc-dev, cluewsc-test, math_500, mmlu);
`python -m pytest_deepseek.accuracy.bundled` rewrites the per-backend folders and `answer_key.jsonl`
from it (a test checks they are in sync):

- evalscope: `general_mcq/<subset>_val.jsonl`, `math_500/test.jsonl`, `mmlu/{README.md,all/test.jsonl,all/dev.jsonl}`
- opencompass (the `COMPASS_DATA_CACHE` root): `data/FewCLUE/cluewsc/{dev_few_all,test_public}.json`,
  `data/math/test_prm800k_500.jsonl`, `data/mmlu/{dev,test}/<subject>_{dev,test}.csv`
- lm-eval: `<dataset>.jsonl`, read by the task files the runner writes.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from . import names
from .spec import ACCURACY_BACKENDS, ACCURACY_DATASETS, CLUEWSC_SETS, EVALSCOPE, LM_EVAL, MATH_500, MMLU, OPENCOMPASS

DATA_ROOT = Path(__file__).resolve().parent.parent / "data" / "eval"  # one folder per backend, named after it
ITEMS_DIR = DATA_ROOT / "items"
ANSWER_KEY = DATA_ROOT / "answer_key.jsonl"
LETTERS = "ABCDEFGHIJ"
MATH_FIELDS = ("problem", "solution", "answer", "subject", "level", "unique_id")


def bundled_datasets_dir(backend: str) -> Path:
    """The folder holding the bundled datasets in `backend`'s layout (pass it as the data dir)."""
    if backend not in ACCURACY_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(ACCURACY_BACKENDS)}")
    return DATA_ROOT / backend


def load_items(dataset: str, items_dir: Path = ITEMS_DIR) -> list[dict[str, Any]]:
    """The canonical items of one bundled dataset."""
    path = items_dir / f"{dataset}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cluewsc_question(item: dict[str, Any], *, options: bool = True) -> str:
    """The CLUEWSC question as OpenCompass's FewCLUE_cluewsc_gen asks it; evalscope adds its own options."""
    question = f"{item['text']}\n此处，“{item['span2']}”是否指代“{item['span1']}“？"
    return question + "\nA. 是\nB. 否\n请从”A“，”B“中进行选择。\n答：" if options else question


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def evalscope_files(items: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Relative path -> text of the evalscope layout."""
    # The runner reads `<data dir>/<benchmark>`: the folders are named as the runner asks for them.
    files: dict[str, str] = {}
    for dataset in CLUEWSC_SETS:
        target = names.to_evalscope(dataset)
        rows = [
            {"id": it["id"], "question": cluewsc_question(it, options=False), "A": "是", "B": "否",
             "answer": "A" if it["label"] else "B"}
            for it in items[dataset]
        ]
        files[f"{target.benchmark}/{target.subset}_val.jsonl"] = _jsonl(rows)
    math_dir, mmlu_dir = names.to_evalscope(MATH_500).benchmark, names.to_evalscope(MMLU).benchmark
    files[f"{math_dir}/test.jsonl"] = _jsonl([{k: it[k] for k in MATH_FIELDS} for it in items[MATH_500]])
    mmlu = [{k: it[k] for k in ("question", "subject", "choices", "answer")} for it in items[MMLU]]
    files[f"{mmlu_dir}/README.md"] = (
        "---\nconfigs:\n- config_name: all\n  data_files:\n  - split: test\n    path: all/test.jsonl\n"
        "  - split: dev\n    path: all/dev.jsonl\n---\n"
    )
    files[f"{mmlu_dir}/all/test.jsonl"] = _jsonl(mmlu)
    files[f"{mmlu_dir}/all/dev.jsonl"] = _jsonl(mmlu)
    return files


def opencompass_files(items: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Relative path -> text of the OpenCompass `COMPASS_DATA_CACHE` layout."""
    files: dict[str, str] = {}
    for dataset, filename in names.OPENCOMPASS_CLUEWSC_FILES.items():
        rows = [
            {
                "target": {
                    "span1_text": it["span1"],
                    "span2_text": it["span2"],
                    "span1_index": it["span1_index"],
                    "span2_index": it["span2_index"],
                },
                "idx": it["id"],
                "label": "true" if it["label"] else "false",
                "text": it["text"],
            }
            for it in items[dataset]
        ]
        files[f"data/FewCLUE/cluewsc/{filename}"] = _jsonl(rows)
    files["data/math/test_prm800k_500.jsonl"] = _jsonl(
        [{k: it[k] for k in MATH_FIELDS} for it in items[MATH_500]]
    )
    for subject in sorted({it["subject"] for it in items[MMLU]}):
        table = [[it["question"], *it["choices"], LETTERS[it["answer"]]]
                 for it in items[MMLU] if it["subject"] == subject]
        files[f"data/mmlu/test/{subject}_test.csv"] = _csv(table)
        files[f"data/mmlu/dev/{subject}_dev.csv"] = _csv(table)
    return files


def lm_eval_files(items: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Relative path -> text of the lm-eval layout (one JSON-lines file per dataset)."""
    files: dict[str, str] = {}
    for dataset in CLUEWSC_SETS:
        rows = [{"id": it["id"], "question": cluewsc_question(it), "answer": "A" if it["label"] else "B"}
                for it in items[dataset]]
        files[f"{dataset}.jsonl"] = _jsonl(rows)
    files[f"{MATH_500}.jsonl"] = _jsonl([{k: it[k] for k in ("id", "problem", "answer")} for it in items[MATH_500]])
    files[f"{MMLU}.jsonl"] = _jsonl(
        [{"id": it["id"], "subject": it["subject"], "question": it["question"], "choices": it["choices"],
          "target": LETTERS[it["answer"]]} for it in items[MMLU]]
    )
    return files


def answer_key(items: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per item: how to recognise its prompt, the right and a wrong answer, how to format them."""
    key: list[dict[str, Any]] = []
    for dataset in CLUEWSC_SETS:
        for it in items[dataset]:
            right = "A" if it["label"] else "B"
            key.append({
                "dataset": dataset, "id": f"{dataset}/{it['id']}",
                "match": [it["text"], f"“{it['span2']}”是否指代“{it['span1']}“"],
                "answer": right, "wrong": "B" if right == "A" else "A", "format": "choice_zh",
            })
    for it in items[MATH_500]:
        key.append({"dataset": MATH_500, "id": f"{MATH_500}/{it['id']}", "match": [it["problem"]],
                    "answer": it["answer"], "wrong": it["wrong"], "format": "boxed"})
    for it in items[MMLU]:
        right = LETTERS[it["answer"]]
        key.append({"dataset": MMLU, "id": f"{MMLU}/{it['id']}", "match": [it["question"]],
                    "answer": right, "wrong": LETTERS[(it["answer"] + 1) % len(it["choices"])], "format": "choice_en"})
    return key


def expected_files(items_dir: Path = ITEMS_DIR) -> dict[Path, str]:
    """Every bundled file (absolute path -> text) as the builders make it."""
    items = {d: load_items(d, items_dir) for d in ACCURACY_DATASETS}
    out: dict[Path, str] = {}
    builders = ((EVALSCOPE, evalscope_files), (OPENCOMPASS, opencompass_files), (LM_EVAL, lm_eval_files))
    for backend, build in builders:
        for rel, text in build(items).items():
            out[bundled_datasets_dir(backend) / rel] = text
    out[ANSWER_KEY] = _jsonl(answer_key(items))
    return out


def write_bundled() -> list[Path]:
    """Rewrite the per-backend folders and the answer key from the canonical items."""
    written = []
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_bundled():
        print(p)
