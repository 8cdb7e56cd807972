"""A real, small mmengine training run whose loss converges to a floor near 0.0013.

It drives ``mmengine.runner.Runner`` on CPU: a linear regression with Gaussian label noise, so the
mean-squared-error floor is the noise variance (about 0.0012). A hook publishes ``tokens_per_sec``
and ``tflops`` the way XTuner's throughput hook does (per device, pretend tokens), so the log has
the same shape as an XTuner DeepSeek fine-tuning log.

Needs the optional extra ``[train-examples]`` (CPU ``torch==2.13.0`` and ``mmengine==0.10.7``)::

    python examples/train_mmengine_toy.py --work-dir work_dirs/toy --iters 2000

mmengine writes ``<work_dir>/<timestamp>/<timestamp>.log`` and
``<work_dir>/<timestamp>/vis_data/<timestamp>.json``; point ``--deepseek-training-log`` at ``<work_dir>``.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

FEATURES = 16
NOISE_STD = math.sqrt(0.0012)  # the loss floor is the noise variance
PRETEND_SEQ_LEN = 512


class NoisyLinear(Dataset):
    """y = x . w + N(0, NOISE_STD^2): the best possible MSE is NOISE_STD^2."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, FEATURES, generator=g)
        w = torch.linspace(-1.0, 1.0, FEATURES)
        self.y = self.x @ w + NOISE_STD * torch.randn(n, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"inputs": self.x[i], "labels": self.y[i]}


class LinearRegressor(BaseModel):
    """One linear layer trained on mean-squared error."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(FEATURES, 1)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor, mode: str = "tensor") -> Any:
        pred = self.lin(inputs).squeeze(-1)
        if mode == "loss":
            return {"loss": ((pred - labels) ** 2).mean()}
        if mode == "predict":
            return list(zip(pred, labels))
        return pred


class PretendThroughputHook(Hook):
    """Publishes train/tokens_per_sec and train/tflops per device, as XTuner's hook does."""

    priority = 55

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        step_s = runner.message_hub.get_scalar("train/time").current()
        tokens = self.batch_size * PRETEND_SEQ_LEN
        runner.message_hub.update_scalar("train/tflops", 6e-12 * 17 * tokens / (step_s + 1e-12))
        runner.message_hub.update_scalar("train/tokens_per_sec", tokens / (step_s + 1e-12))


def build_runner(work_dir: str, iters: int, batch_size: int, lr: float, seed: int) -> Runner:
    """A Runner logging every iteration with window_size 1 (XTuner's setting)."""
    torch.manual_seed(seed)  # the model is built before the Runner seeds everything
    return Runner(
        model=LinearRegressor(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=NoisyLinear(32_000, seed),
            sampler=dict(type="DefaultSampler", shuffle=True, seed=seed),
            batch_size=batch_size,
            num_workers=0,
            collate_fn=dict(type="default_collate"),
        ),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=lr)),
        param_scheduler=[dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50)],
        train_cfg=dict(by_epoch=False, max_iters=iters),
        default_hooks=dict(
            logger=dict(type="LoggerHook", interval=1, log_metric_by_epoch=False),
            checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=10 * iters,
                            save_last=False),
        ),
        custom_hooks=[dict(type=PretendThroughputHook, batch_size=batch_size)],
        log_processor=dict(by_epoch=False, window_size=1),
        default_scope=None,
        randomness=dict(seed=seed),
    )


def main() -> None:
    """Parse the command line and train."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-dir", default="work_dirs/mmengine_toy")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.0025)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    build_runner(args.work_dir, args.iters, args.batch_size, args.lr, args.seed).train()


if __name__ == "__main__":
    main()
