"""Fuzzing the evaluation result readers (evalscope, OpenCompass, lm-eval) through `read_results`.

Their contract: any folder gives score records of the declared types (a finite score in percent or
None, whole counts, string names) or a `ResultsError` that names the file and says what is wrong.
Result folders copied from real runs are broken the ways files break: cut short, bytes corrupted,
JSON fields dropped or of the wrong type, CSV cells edited, files missing.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import strategies as st

from pytest_deepseek.accuracy.read import READERS, ResultsError, read_results
from pytest_deepseek.accuracy.records import ItemResult, ScoreRecord

from .mutate import assert_clear, corrupted_bytes, json_values, mutated_document, mutated_lines, write_tree
from .target import Target

RESULTS = Path(__file__).resolve().parents[1] / "data" / "eval-results"
RUNS = ("evalscope", "evalscope-errored", "lm-eval", "opencompass")
READ_SUFFIXES = (".json", ".jsonl", ".csv", ".yaml")
RESULT_FIELDS = frozenset((
    "metrics", "identity", "name", "score", "num", "categories", "subsets", "is_aggregate", "execution_summary",
    "requested", "succeeded", "errored", "incomplete", "primary_metric_identity", "dataset_name", "sample_score",
    "value", "status", "group_id", "sample_id", "index", "results", "configs", "metric_list", "metric",
    "filter_list", "n-samples", "effective", "sample_len", "versions", "task_hashes", "group_subtasks", "resps",
    "doc_id", "filter", "exact_match", "exact_match,extract", "exact_match_stderr,extract", "repeats", "details",
    "correct", "predictions", "references", "example_abbr", "evaluation_identity", "benchmarks",
    "evaluation_version", "fingerprint", "evalscope_version", "lm_eval_version", "accuracy",
))


class ResultFolder(NamedTuple):
    """A results folder: relative path -> bytes, and the tool that wrote it (None: to be detected)."""

    files: tuple[tuple[str, bytes], ...]
    backend: str | None


def _run_files(run: str) -> dict[str, bytes]:
    """The files of a real run the readers look at (logs, HTML and predictions evalscope never reads left out)."""
    root = RESULTS / run
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and path.suffix in READ_SUFFIXES and not (run.startswith("evalscope")
                                                                   and rel.startswith("predictions/")):
            files[rel] = path.read_bytes()
    return files


SEEDS = {run: _run_files(run) for run in RUNS}


# -- the check -----------------------------------------------------------------------------------------


def check_folder(example: ResultFolder) -> None:
    """`read_results` on the folder: well-typed records, or a clear `ResultsError`."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        write_tree(root, example.files)
        try:
            records = read_results(root, backend=example.backend)
        except ResultsError as exc:
            assert_clear(str(exc))
            return
    for record in records:
        assert_well_typed(record)


def assert_well_typed(record: ScoreRecord) -> None:
    assert isinstance(record.dataset, str) and isinstance(record.metric, str), record
    assert record.backend in READERS and isinstance(record.native_name, str), record
    assert record.score is None or (type(record.score) is float and math.isfinite(record.score)), record.score
    for count in (record.n, record.requested):
        assert count is None or type(count) is int, (count, record)
    assert type(record.errored) is int and type(record.incomplete) is bool, record
    assert type(record.repeats) is int and record.repeats >= 1, record.repeats
    for name in (record.config_version, record.config_hash, record.backend_version):
        assert name is None or isinstance(name, str), (name, record)
    assert all(isinstance(p, str) for p in (*record.problems, *record.notes)), record
    if record.items is not None:
        for item in record.items:
            assert isinstance(item, ItemResult) and isinstance(item.id, str), item
            assert type(item.score) is float and math.isfinite(item.score), item
            assert type(item.errored) is bool, item
    json.dumps(record.to_dict(), allow_nan=False)


# -- fully random input: files where the tools put theirs, with anything in them ------------------------

LAYOUTS = (
    "reports/m/mmlu.json", "reports/m/general_mcq.json", "reports/m/x", "configs/task_config.yaml",
    "reviews/m/mmlu_all.jsonl", "reviews/m/general_mcq_cluewsc.jsonl", "20260101_000000/reports/m/a.json",
    "summary/summary_20260101.csv", "20260101/summary/summary_20260101.csv", "results/m/a.json",
    "predictions/m/a.json", "m/results_2026.json", "m/samples_t_2026.jsonl", "results_2026.json",
)


def _random_folders() -> st.SearchStrategy[ResultFolder]:
    content = st.binary(max_size=200) | json_values().map(lambda v: json.dumps(v).encode()) \
        | st.text(max_size=100).map(str.encode)
    files = st.lists(st.tuples(st.sampled_from(LAYOUTS), content), max_size=5, unique_by=lambda f: f[0])
    return st.builds(ResultFolder, files.map(tuple), st.sampled_from((None, *READERS)))


# -- structure-aware input: real result folders, broken ------------------------------------------------


@st.composite
def _broken_file(draw: st.DrawFn, rel: str, data: bytes) -> bytes | None:
    """One file of a run: JSON retyped, CSV/YAML lines edited, cut short, bytes corrupted, or gone (None)."""
    op = draw(st.sampled_from(("structure", "structure", "cut", "corrupt", "delete")))
    if op == "delete":
        return None
    if op == "cut":
        return data[:draw(st.integers(0, len(data)))]
    if op == "corrupt":
        return draw(corrupted_bytes(data, max_edits=2))
    text = data.decode("utf-8")
    if rel.endswith(".json"):
        return draw(mutated_document(json.loads(text), RESULT_FIELDS, max_edits=3)).encode()
    lines = text.splitlines()
    if rel.endswith(".jsonl") and lines:
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = draw(mutated_document(json.loads(lines[i]), RESULT_FIELDS, max_edits=2))
    else:
        lines = draw(mutated_lines(lines, max_edits=3))
    return ("\n".join(lines) + "\n").encode()


@st.composite
def _broken_runs(draw: st.DrawFn) -> ResultFolder:
    run = draw(st.sampled_from(RUNS))
    files = dict(SEEDS[run])
    for rel in draw(st.lists(st.sampled_from(sorted(files)), min_size=1, max_size=3, unique=True)):
        broken = draw(_broken_file(rel, files[rel]))
        if broken is None:
            del files[rel]
        else:
            files[rel] = broken
    backend = draw(st.sampled_from((None, "lm-eval" if run == "lm-eval" else run.split("-")[0])))
    return ResultFolder(tuple(files.items()), backend)


TARGETS = [
    Target("results.random-folders", _random_folders(), check_folder),
    Target("results.broken-runs", _broken_runs(), check_folder),
]


@pytest.mark.parametrize("run", RUNS)
def test_seed_runs_read(run: str) -> None:
    """Every seed run reads as it is, with well-typed records: mutations start from real results."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, data in SEEDS[run].items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        records = read_results(root)
    assert records
    for record in records:
        assert_well_typed(record)


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_never_crashes(target: Target) -> None:
    target.run()
