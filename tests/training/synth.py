"""Our own generators of log lines in the shapes the frameworks print (see TRAINING.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Sequence

DATA = Path(__file__).resolve().parent.parent / "data" / "training"
REAL = DATA / "real"
TOY = DATA / "mmengine-toy"
TOY_TS = "20261123_124356"
TOY_LOG = TOY / TOY_TS / f"{TOY_TS}.log"
TOY_JSON = TOY / TOY_TS / "vis_data" / f"{TOY_TS}.json"


def losses(n: int, start: float = 2.0, floor: float = 0.5, rate: float = 0.05) -> list[float]:
    """A smooth decaying loss curve."""
    return [floor + (start - floor) * math.exp(-rate * i) for i in range(n)]


def megatron_lines(loss: Sequence[float | None], step_ms: float = 1752.3, total: int = 100,
                   nan_at: Iterable[int] = ()) -> list[str]:
    """Megatron-LM training-log lines; a None or nan_at loss is dropped as Megatron does."""
    nan_at = set(nan_at)
    out = []
    for i, v in enumerate(loss, 1):
        parts = [f" iteration {i:8d}/{total:8d} ", f" consumed samples: {64 * i:12d} ",
                 f" elapsed time per iteration (ms): {step_ms:.1f} ",
                 " throughput per GPU (TFLOP/s/GPU): 180.2 ", " learning rate: 1.000000E-05 ",
                 " global batch size:    64 "]
        if v is not None and i not in nan_at:
            parts.append(f" lm loss: {v:.6E} ")
        parts += [" loss scale: 1.0 ", " grad norm: 1.234 ",
                  " number of skipped iterations:   0 ", f" number of nan iterations:   {1 if i in nan_at else 0} "]
        out.append(f"[2026-11-23 10:00:{i % 60:02d}]" + "|".join(parts) + "|")
    return out


def torchtitan_lines(loss: Sequence[float], tps: int = 1234) -> list[str]:
    """torchtitan metric lines, coloured as on a terminal."""
    g, r, y, b, m, x = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[34m", "\x1b[35m", "\x1b[39m"
    return [f"[rank0]:[titan] 2026-11-23 10:00:00,000 - root - INFO - {r}step: {i:2d}  {g}loss: {v:7.4f}  "
            f"{y}memory: 12.34GiB(15.60%)  {b}tps: {tps + i:,}  {m}tflops: 56.70  {m}mfu: 12.30%{x}"
            for i, v in enumerate(loss, 1)]


def deepspeed_lines(steps: int, every: int = 2) -> list[str]:
    """DeepSpeed's step= and throughput lines at steps_per_print."""
    out = []
    for s in range(every, steps + 1, every):
        out.append(f"[2026-11-23 10:00:00,000] [INFO] [logging.py:128:log_dist] [Rank 0] step={s}, skipped=0, "
                   f"lr=[0.05], mom=[0.0]")
        out.append(f"[2026-11-23 10:00:00,000] [INFO] [timer.py:264:stop] epoch=0/micro_step={s}/global_step={s}, "
                   f"RunningAvgSamplesPerSec=1000.5, CurrSamplesPerSec=1001.25, MemAllocated=0.5GB, "
                   f"MaxMemAllocated=1.25GB")
    return out


def hf4_lines(loss: Sequence[float]) -> list[str]:
    """transformers 4.x stdout dicts (floats, ``nan`` bare)."""
    return [f"{{'loss': {round(v, 4)}, 'grad_norm': 1.5, 'learning_rate': 5e-05, 'epoch': {i / 100}}}"
            for i, v in enumerate(loss, 1)]


def llamafactory_lines(loss: Sequence[float], tokens_per_step: int = 4096, step_s: float = 2.0) -> list[str]:
    """LLaMA-Factory trainer_log.jsonl records."""
    out = []
    for i, v in enumerate(loss, 1):
        el = int(i * step_s)
        out.append(json.dumps({"current_steps": i, "total_steps": len(loss), "loss": v, "lr": 1e-5,
                               "epoch": i / len(loss), "percentage": 100 * i / len(loss),
                               "elapsed_time": f"{el // 3600}:{el // 60 % 60:02d}:{el % 60:02d}",
                               "remaining_time": "0:00:00", "total_tokens": tokens_per_step * i}))
    return out


def mindformers_lines(step_ms: Sequence[float], loss: Sequence[float], gbs: int, devices: int,
                      steps_per_epoch: int = 1000, old: bool = False, overflow_at: Iterable[int] = (),
                      prefix: str = "2026-11-23 10:00:00,000 - mindformers[mindformers/core/callback/callback.py:747] - INFO - "
                      ) -> list[str]:
    """MindFormers two-line records; ``old`` prints ``loss: x.xxx`` (3 decimals)."""
    over = set(overflow_at)
    out = []
    n = len(loss)
    for i, (ms, v) in enumerate(zip(step_ms, loss), 1):
        lo = f"loss: {v:.3f}" if old else f"loss:[{v:.6f}/{v:.6f}]"
        out.append(f"{prefix}{{ Epoch:[  1/  1], step:[{i:5d}/{steps_per_epoch:5d}], {lo}, per_step_time: {int(ms)}ms, "
                   f"lr: 1e-05, overflow cond: {i in over}, loss_scale: 1.0, global_norm: [1.2345]")
        sps = gbs / devices / (ms / 1000.0)
        pct = 100.0 * i / n
        bar = "█" * int(pct / 2)
        out.append(f"{prefix}  {pct:5.1f}% │{bar:<50}│ {sps:.5f} samples/s/p  1:00:00 }}")
    return out


def toy_text_records() -> list[str]:
    """The Iter(train) lines of the committed real toy run."""
    return [line for line in TOY_LOG.read_text().splitlines() if "Iter(train)" in line]


def write(path: Path, lines: Iterable[str]) -> Path:
    """Write lines with newlines; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path
