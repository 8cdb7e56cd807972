"""Several files and ranks: directories, globs, launcher prefixes, rotations, resumed runs."""

from __future__ import annotations

import shutil
from pathlib import Path

from pytest_deepseek.training import load_records
from pytest_deepseek.training.sources import rank_from_path, resolve_sources

from . import synth


def test_prefixed_ranks_in_one_file_keep_rank_zero_for_mmengine(tmp_path: Path) -> None:
    lines = synth.toy_text_records()[:6]
    mixed = []
    for line in lines:
        mixed.append(f"[default0]:{line}")
        mixed.append(f"[default1]:{line.replace('loss: ', 'loss: 9')}")  # rank-local, different
    log = load_records(synth.write(tmp_path / "all.log", mixed))
    assert log.rank == 0 and log.ranks_seen == [0, 1] and len(log.records) == 6
    assert all(r.metrics["loss"] < 9 for r in log.records)  # never averaged with rank 1
    assert any("kept rank 0" in w for w in log.warnings)


def test_megatron_keeps_the_last_rank(tmp_path: Path) -> None:
    a = [f"[rank0]:{line}" for line in synth.megatron_lines([5.0, 5.0])]
    b = [f"[rank7]:{line}" for line in synth.megatron_lines([2.0, 1.0])]
    log = load_records(synth.write(tmp_path / "m.log", a + b))
    assert log.rank == 7 and [r.metrics["loss"] for r in log.records] == [2.0, 1.0]


def test_mindformers_per_rank_directory_keeps_the_last_stage(tmp_path: Path) -> None:
    for rank, loss in ((0, 9.0), (7, 1.0)):
        synth.write(tmp_path / "output" / "msrun_log" / f"worker_{rank}.log",
                    synth.mindformers_lines([100.0] * 2, [loss, loss], gbs=8, devices=8))
    log = load_records(tmp_path)
    assert log.rank == 7 and log.records[0].metrics["loss"] == 1.0
    assert [rank_from_path(f) for f in log.files] == [0, 7]


def test_glob_of_per_rank_files(tmp_path: Path) -> None:
    for rank in (0, 1):
        synth.write(tmp_path / f"rank{rank}.log", synth.megatron_lines([float(rank + 1)] * 2))
    log = load_records(str(tmp_path / "rank*.log"))
    assert log.rank == 1 and log.records[0].metrics["loss"] == 2.0


def test_resumed_run_keeps_the_last_record_per_iteration(tmp_path: Path) -> None:
    lines = synth.toy_text_records()
    resumed = lines[:30] + lines[20:40]  # restarted from a checkpoint at iteration 20
    marked = resumed[:30] + [line.replace("loss: ", "loss: 100") for line in resumed[30:]]
    log = load_records(synth.write(tmp_path / "r.log", marked))
    assert [r.iteration for r in log.records] == list(range(1, 41))
    assert log.records[25].metrics["loss"] >= 100  # iteration 26 from the resumed part
    assert log.records[5].metrics["loss"] < 100
    assert any("repeated" in w and "from iteration 21" in w for w in log.warnings)


def test_rotated_info_logs_are_read_oldest_first(tmp_path: Path) -> None:
    lines = synth.mindformers_lines([100.0] * 6, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0], gbs=8, devices=1)
    d = tmp_path / "output" / "log" / "rank_0"
    synth.write(d / "info.log.2", lines[:4])
    synth.write(d / "info.log.1", lines[4:8])
    synth.write(d / "info.log", lines[8:])
    log = load_records(tmp_path)
    assert [Path(f).name for f in log.files] == ["info.log.2", "info.log.1", "info.log"]
    assert [r.metrics["loss"] for r in log.records] == [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]


def test_mmengine_resume_creates_a_second_timestamp_dir(tmp_path: Path) -> None:
    shutil.copytree(synth.TOY / synth.TOY_TS, tmp_path / synth.TOY_TS)
    second = tmp_path / "20261124_000000" / "vis_data"
    second.mkdir(parents=True)
    js = synth.TOY_JSON.read_text().splitlines()[1989:]  # iterations 1990..2000 again
    (second / "20261124_000000.json").write_text("\n".join(js) + "\n")
    srcs = resolve_sources(tmp_path)
    assert [s.role for s in srcs] == ["records", "events", "records"]
    log = load_records(tmp_path)
    assert len(log.records) == 2000 and any("repeated" in w for w in log.warnings)


def test_hf_output_dir_uses_the_latest_checkpoint_state(tmp_path: Path) -> None:
    state = (synth.REAL / "hf-trainer" / "trainer_state.json").read_text()
    for n in (10, 50):
        (tmp_path / f"checkpoint-{n}").mkdir()
        (tmp_path / f"checkpoint-{n}" / "trainer_state.json").write_text(state)
    assert resolve_sources(tmp_path)[0].path.endswith("checkpoint-50/trainer_state.json")
    assert len(load_records(tmp_path).records) == 50


def test_crash_message_in_the_text_log_next_to_vis_data(tmp_path: Path) -> None:
    shutil.copytree(synth.REAL / "mmengine" / "iter-based", tmp_path / "w")
    text = next((tmp_path / "w").glob("*/*.log"))
    text.chmod(0o644)
    with text.open("a") as fh:
        fh.write("Traceback (most recent call last):\n  File \"train.py\", line 1\n"
                 "torch.OutOfMemoryError: CUDA out of memory.\n")
    log = load_records(tmp_path / "w")
    assert [e.kind for e in log.events][:1] == ["crash"] and "Traceback" in log.events[0].line
