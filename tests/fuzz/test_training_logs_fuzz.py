"""Fuzzing the training-log dialects, through `load_records` and through each dialect's parser.

Their contract: any file, folder or line gives a `TrainingLog` of well-typed records (integer
iterations, float metrics, strictly increasing iterations) or a `TrainingLogError` that says what is
wrong; a dialect's parser counts a line it cannot read as corrupt and never raises.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import strategies as st

from pytest_deepseek.training.dialects import DIALECT_NAMES, parser_for
from pytest_deepseek.training.dialects.base import MAX_CORRUPT_EXAMPLES
from pytest_deepseek.training.loader import load_records
from pytest_deepseek.training.normalise import normalise_line
from pytest_deepseek.training.records import Record, TrainingLog, TrainingLogError
from training.synth import (
    REAL,
    deepspeed_lines,
    hf4_lines,
    llamafactory_lines,
    losses,
    megatron_lines,
    mindformers_lines,
    torchtitan_lines,
)

from .mutate import assert_clear, corrupted_bytes, mutated_document, mutated_lines, write_tree
from .target import Target

EXAMPLE_RUN = Path(__file__).resolve().parents[2] / "pytest_deepseek" / "data" / "examples" / "mmengine-toy"
WINDOW = 40  # lines of a seed fed at once: long enough for several records, short enough to be quick
JSON_FIELDS = frozenset((
    "iter", "step", "epoch", "loss", "time", "lr", "current_steps", "elapsed_time", "total_tokens", "rank",
    "log_history", "train_batch_size", "train_runtime", "num_input_tokens_seen", "learning_rate", "iteration",
))


class LogSeed(NamedTuple):
    """Real (or faithfully synthesised) lines of one dialect, and the file name they are written to."""

    dialect: str
    file: str
    lines: tuple[str, ...]
    json_lines: bool = False


def _lines(path: Path) -> tuple[str, ...]:
    return tuple(path.read_text(encoding="utf-8").splitlines())


def _seeds() -> list[LogSeed]:
    mm = REAL / "mmengine"
    vis = sorted(EXAMPLE_RUN.glob("*/vis_data/*.json"))[0]
    curve = losses(30)
    return [
        LogSeed("mmengine", "20261123.log", _lines(sorted(EXAMPLE_RUN.glob("*/*.log"))[0])),
        LogSeed("mmengine", "console.txt", _lines(mm / "iter-based-console.txt")),
        LogSeed("mmengine", "20261123_093506.log", _lines(next(mm.glob("epoch-based/*/*.log")))),
        LogSeed("mmengine", "20261123_093538.log", _lines(next(mm.glob("eta-days/*/*.log")))),
        LogSeed("mmengine", "vis.json", _lines(vis), json_lines=True),
        LogSeed("mindformers", "console.txt", _lines(REAL / "mindformers" / "console.txt")),
        LogSeed("mindformers", "worker_0.log", tuple(mindformers_lines([350.0] * 20, curve[:20], 64, 8, old=True))),
        LogSeed("megatron", "train.log", tuple(megatron_lines(curve, nan_at=(5,)))),
        LogSeed("torchtitan", "train.log", tuple(torchtitan_lines(curve))),
        LogSeed("deepspeed", "ds_stdout.txt", _lines(REAL / "deepspeed" / "ds_stdout.txt")),
        LogSeed("deepspeed", "ds.log", tuple(deepspeed_lines(20))),
        LogSeed("hf", "console.txt", _lines(REAL / "hf-trainer" / "console.txt")),
        LogSeed("hf", "stdout.txt", tuple(hf4_lines(curve))),
        LogSeed("hf", "trainer_log.jsonl", tuple(llamafactory_lines(curve)), json_lines=True),
        LogSeed("jsonl", "metrics.jsonl", tuple(json.dumps({"step": i, "loss": v, "lr": 1e-4, "rank": 0})
                                                for i, v in enumerate(curve, 1)), json_lines=True),
    ]


SEEDS = _seeds()
TRAINER_STATE = json.loads((REAL / "hf-trainer" / "trainer_state.json").read_text(encoding="utf-8"))


class LogFile(NamedTuple):
    """One file to load, in the dialect it was written in."""

    dialect: str
    file: str
    data: bytes


# -- the checks ------------------------------------------------------------------------------------------


def check_file(example: LogFile) -> None:
    """The file in its own dialect and auto-detected through `load_records`, and line by line through
    its dialect's parser."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / example.file
        path.write_bytes(example.data)
        for dialect in (example.dialect, "auto"):
            load(path, dialect)
    feed_parser(example.dialect, example.data.decode("utf-8", "replace"))


def load(path: Path, dialect: str) -> TrainingLog | None:
    """`load_records`, checked: a well-formed log or a clear `TrainingLogError`."""
    try:
        log = load_records(path, dialect)
    except TrainingLogError as exc:
        assert_clear(str(exc))
        return None
    assert_well_formed(log)
    return log


def assert_well_formed(log: TrainingLog) -> None:
    assert log.dialect in DIALECT_NAMES
    assert log.records, "load_records returned a log without records"
    previous = None
    for record in log.records:
        assert_well_typed(record)
        assert previous is None or record.iteration > previous, f"iterations out of order at {record.quote()}"
        previous = record.iteration
    log.describe()
    log.metric_names()


def assert_well_typed(record: Record) -> None:
    assert type(record.iteration) is int, record
    assert record.rank is None or type(record.rank) is int, record
    assert record.time is None or type(record.time) is float, record
    for name, value in record.metrics.items():
        assert isinstance(name, str) and type(value) is float, (name, value, record.quote())


def feed_parser(dialect: str, text: str) -> None:
    """Every line through a fresh parser of `dialect` (and the whole text through its bulk paths)."""
    parser = parser_for(dialect)
    parser.start_file("fuzz.log", None)
    parser.feed_whole(text)
    for lineno, raw in enumerate(text.splitlines(), 1):
        line, rank = normalise_line(raw)
        parser.feed(line, rank, lineno)
    parser.finish()
    bulk = parser_for(dialect)
    block = getattr(bulk, "feed_block", None)
    if block is not None:
        block(text, 1, None, lambda line, lineno: None)
    for record in parser.records + bulk.records:
        assert_well_typed(record)
    assert len(parser.corrupt_examples) <= min(parser.corrupt, MAX_CORRUPT_EXAMPLES)


# -- fully random input ---------------------------------------------------------------------------------


def _random_files() -> st.SearchStrategy[LogFile]:
    lines = st.lists(st.sampled_from([line for seed in SEEDS for line in seed.lines[:60]]) | st.text(max_size=60),
                     max_size=12).map(lambda ls: "\n".join(ls).encode())
    return st.builds(LogFile, st.sampled_from(DIALECT_NAMES), st.sampled_from(("x.log", "x.json", "x.jsonl")),
                     st.binary(max_size=400) | lines)


# -- structure-aware input: real lines, mutated ---------------------------------------------------------


@st.composite
def _mutated_logs(draw: st.DrawFn) -> LogFile:
    """A window of a seed's lines with numbers, prefixes and fields broken, then maybe its bytes."""
    seed = draw(st.sampled_from(SEEDS))
    start = draw(st.integers(0, max(0, len(seed.lines) - WINDOW)))
    lines = list(seed.lines[start:start + draw(st.integers(1, WINDOW))])
    if seed.json_lines and lines and draw(st.booleans()):
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = draw(mutated_document(json.loads(lines[i]), JSON_FIELDS, max_edits=2))
    lines = draw(mutated_lines(lines, max_edits=3))
    data = ("\n".join(lines) + draw(st.sampled_from(("\n", "", "\r\n")))).encode()
    return LogFile(seed.dialect, seed.file, draw(corrupted_bytes(data, max_edits=1)))


@st.composite
def _mutated_trainer_states(draw: st.DrawFn) -> LogFile:
    """HF `trainer_state.json` with its fields dropped or retyped."""
    text = draw(mutated_document(TRAINER_STATE, JSON_FIELDS, max_edits=3))
    return LogFile("hf", "trainer_state.json", draw(corrupted_bytes(text.encode(), max_edits=1)))


# -- folders: the layouts `load_records` resolves, filled with any dialect's lines -----------------------

LAYOUTS = (
    "20261123_000000/20261123_000000.log", "20261123_000000/vis_data/20261123_000000.json",
    "20261123_000000/vis_data/scalars.json", "vis_data/1.json", "output/msrun_log/worker_0.log",
    "output/msrun_log/worker_1.log", "msrun_log/worker_x.log", "output/log/rank_0/info.log",
    "output/log/rank_1/info.log.1", "trainer_log.jsonl", "trainer_state.json", "checkpoint-10/trainer_state.json",
    "checkpoint-x/trainer_state.json", "train.log", "train.log.2", "rank3.out", "notes.md",
)


class LogFolder(NamedTuple):
    """Files (relative path -> bytes) laid out as the frameworks lay out their logs."""

    files: tuple[tuple[str, bytes], ...]


def check_folder(example: LogFolder) -> None:
    """A folder of log files: detected, resolved and loaded, or a clear error."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "run"
        write_tree(root, example.files)
        load(root, "auto")


def _folders() -> st.SearchStrategy[LogFolder]:
    content = _mutated_logs().map(lambda f: f.data) | _mutated_trainer_states().map(lambda f: f.data)
    files = st.lists(st.tuples(st.sampled_from(LAYOUTS), content), min_size=1, max_size=4, unique_by=lambda f: f[0])
    return files.map(lambda fs: LogFolder(tuple(fs)))


TARGETS = [
    Target("training.random-files", _random_files(), check_file),
    Target("training.mutated-lines", _mutated_logs(), check_file),
    Target("training.mutated-trainer-state", _mutated_trainer_states(), check_file),
    Target("training.mutated-folders", _folders(), check_folder),
]


@pytest.mark.parametrize("seed", SEEDS, ids=[f"{s.dialect}-{s.file}" for s in SEEDS])
def test_seeds_load(seed: LogSeed, tmp_path: Path) -> None:
    """Every seed is a readable log of its dialect: mutations start from real records."""
    path = tmp_path / seed.file
    path.write_text("\n".join(seed.lines) + "\n", encoding="utf-8")
    log = load(path, seed.dialect)
    assert log is not None and log.dialect == seed.dialect


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_never_crashes(target: Target) -> None:
    target.run()
