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

DATA_ROOT = Path(__file__).resolve().parent.parent / "data" / "eval"
ITEMS_DIR = DATA_ROOT / "items"
ANSWER_KEY = DATA_ROOT / "answer_key.jsonl"
BACKEND_DIRS = {"evalscope": "evalscope", "opencompass": "opencompass", "lm-eval": "lm-eval"}
DATASETS = ("cluewsc-dev", "cluewsc-test", "math_500", "mmlu")
LETTERS = "ABCDEFGHIJ"
CLUEWSC_FILES = {"cluewsc-dev": "dev_few_all.json", "cluewsc-test": "test_public.json"}
MATH_FIELDS = ("problem", "solution", "answer", "subject", "level", "unique_id")


def bundled_datasets_dir(backend: str) -> Path:
    """The folder holding the bundled datasets in `backend`'s layout (pass it as the data dir)."""
    if backend not in BACKEND_DIRS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKEND_DIRS)}")
    return DATA_ROOT / BACKEND_DIRS[backend]


def answer_key_path() -> Path:
    """The answer key of the bundled datasets, for the simulator's `content=answer_key` mode."""
    return ANSWER_KEY


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
    files: dict[str, str] = {}
    for dataset in ("cluewsc-dev", "cluewsc-test"):
        subset = names.to_evalscope(dataset).subset
        rows = [
            {"id": it["id"], "question": cluewsc_question(it, options=False), "A": "是", "B": "否",
             "answer": "A" if it["label"] else "B"}
            for it in items[dataset]
        ]
        files[f"general_mcq/{subset}_val.jsonl"] = _jsonl(rows)
    files["math_500/test.jsonl"] = _jsonl(
        [{k: it[k] for k in MATH_FIELDS} for it in items["math_500"]]
    )
    mmlu = [{k: it[k] for k in ("question", "subject", "choices", "answer")} for it in items["mmlu"]]
    files["mmlu/README.md"] = (
        "---\nconfigs:\n- config_name: all\n  data_files:\n  - split: test\n    path: all/test.jsonl\n"
        "  - split: dev\n    path: all/dev.jsonl\n---\n"
    )
    files["mmlu/all/test.jsonl"] = _jsonl(mmlu)
    files["mmlu/all/dev.jsonl"] = _jsonl(mmlu)
    return files


def opencompass_files(items: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Relative path -> text of the OpenCompass `COMPASS_DATA_CACHE` layout."""
    files: dict[str, str] = {}
    for dataset, filename in CLUEWSC_FILES.items():
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
        [{k: it[k] for k in MATH_FIELDS} for it in items["math_500"]]
    )
    for subject in sorted({it["subject"] for it in items["mmlu"]}):
        table = [[it["question"], *it["choices"], LETTERS[it["answer"]]]
                 for it in items["mmlu"] if it["subject"] == subject]
        files[f"data/mmlu/test/{subject}_test.csv"] = _csv(table)
        files[f"data/mmlu/dev/{subject}_dev.csv"] = _csv(table)
    return files


def lm_eval_files(items: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Relative path -> text of the lm-eval layout (one JSON-lines file per dataset)."""
    files: dict[str, str] = {}
    for dataset in ("cluewsc-dev", "cluewsc-test"):
        rows = [{"id": it["id"], "question": cluewsc_question(it), "answer": "A" if it["label"] else "B"}
                for it in items[dataset]]
        files[f"{dataset}.jsonl"] = _jsonl(rows)
    files["math_500.jsonl"] = _jsonl([{k: it[k] for k in ("id", "problem", "answer")} for it in items["math_500"]])
    files["mmlu.jsonl"] = _jsonl(
        [{"id": it["id"], "subject": it["subject"], "question": it["question"], "choices": it["choices"],
          "target": LETTERS[it["answer"]]} for it in items["mmlu"]]
    )
    return files


def answer_key(items: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per item: how to recognise its prompt, the right and a wrong answer, how to format them."""
    key: list[dict[str, Any]] = []
    for dataset in ("cluewsc-dev", "cluewsc-test"):
        for it in items[dataset]:
            right = "A" if it["label"] else "B"
            key.append({
                "dataset": dataset, "id": f"{dataset}/{it['id']}",
                "match": [it["text"], f"“{it['span2']}”是否指代“{it['span1']}“"],
                "answer": right, "wrong": "B" if right == "A" else "A", "format": "choice_zh",
            })
    for it in items["math_500"]:
        key.append({"dataset": "math_500", "id": f"math_500/{it['id']}", "match": [it["problem"]],
                    "answer": it["answer"], "wrong": it["wrong"], "format": "boxed"})
    for it in items["mmlu"]:
        right = LETTERS[it["answer"]]
        key.append({"dataset": "mmlu", "id": f"mmlu/{it['id']}", "match": [it["question"]],
                    "answer": right, "wrong": LETTERS[(it["answer"] + 1) % len(it["choices"])], "format": "choice_en"})
    return key


def expected_files(items_dir: Path = ITEMS_DIR) -> dict[Path, str]:
    """Every bundled file (absolute path -> text) as the builders make it."""
    items = {d: load_items(d, items_dir) for d in DATASETS}
    out: dict[Path, str] = {}
    builders = (("evalscope", evalscope_files), ("opencompass", opencompass_files), ("lm-eval", lm_eval_files))
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
