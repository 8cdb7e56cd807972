"""Run evalscope through its Python API (`TaskConfig(eval_type='openai_api', ...)` then `run_task`).

It runs in a child interpreter (`python -m pytest_deepseek.accuracy.run.evalscope_child task.json`):
evalscope reconfigures logging process-wide, and a child can be timed out and killed. Data come
from local paths only (`dataset_args[<benchmark>]['local_path']`). `ignore_errors=True` keeps one
failed request from aborting every dataset; the reader then reports `errored`, and the gate errors.
The API key reaches the child in its environment only. A CA bundle reaches evalscope's OpenAI client
as `SSL_CERT_FILE`; it has no setting that turns verification off, so `--deepseek-insecure` is
refused for an HTTPS endpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .. import names
from ..reasoning import EVALSCOPE_FILTERS
from ...credentials import reveal
from ..spec import EVALSCOPE
from .common import BackendError, RunRequest, api_base, fresh_dir, offline_env, require_module, run_child
from .evalscope_child import KEY_VARIABLE

INSECURE_REFUSED = ("the evalscope backend cannot skip certificate verification (its OpenAI client has no "
                    "such setting): give the server's CA with --deepseek-ca-bundle instead, or use the "
                    "lm-eval or OpenCompass backend with --deepseek-insecure")


def task_config(req: RunRequest, out_dir: Path) -> dict[str, Any]:
    """The keyword arguments for evalscope's `TaskConfig` (plain JSON)."""
    dataset_args: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for name in req.datasets:
        target = names.to_evalscope(name)
        local = req.data_dir / target.benchmark
        if not local.exists():
            raise BackendError(f"no local data for {name!r}: {local} does not exist (datasets are never downloaded)")
        args = dataset_args.setdefault(target.benchmark, {
            "local_path": str(local),
            "few_shot_num": 0,
            "filters": dict(EVALSCOPE_FILTERS),
        })
        if target.subset is not None:
            args.setdefault("subset_list", []).append(target.subset)
        if target.benchmark not in order:
            order.append(target.benchmark)
    gen = req.generation
    generation_config: dict[str, Any] = {"batch_size": gen.concurrency}
    for key, value in (("max_tokens", gen.max_tokens), ("temperature", gen.temperature), ("top_p", gen.top_p),
                       ("timeout", gen.timeout_s), ("retries", gen.retries), ("seed", gen.seed)):
        if value is not None:
            generation_config[key] = value
    if gen.retries is not None:
        generation_config["retry_interval"] = 1
    return {
        "model": req.model,
        "api_url": api_base(req.base_url),
        "eval_type": "openai_api",
        "datasets": order,
        "dataset_args": dataset_args,
        "eval_batch_size": gen.concurrency,
        "generation_config": generation_config,
        "repeats": gen.repeats,
        "limit": req.limit,
        "work_dir": str(out_dir),
        "no_timestamp": True,
        "ignore_errors": True,
    }


def run(req: RunRequest) -> Path:
    """Evaluate `req.datasets` with evalscope; returns its work dir (the results folder)."""
    if not req.tls.verify and req.base_url.lower().startswith("https:"):  # plain HTTP has nothing to verify
        raise BackendError(INSECURE_REFUSED)
    require_module("evalscope", EVALSCOPE)
    out_dir = fresh_dir(req.work_dir, EVALSCOPE)
    spec = out_dir / "pytest_deepseek_task.json"
    spec.write_text(json.dumps(task_config(req, out_dir), indent=2), encoding="utf-8")
    run_child(
        [sys.executable, "-m", "pytest_deepseek.accuracy.run.evalscope_child", str(spec)],
        log_path=out_dir / "pytest_deepseek_evalscope.log",
        env=offline_env(child_env(req)),
        cwd=out_dir,
        timeout_s=req.timeout_s,
        what=EVALSCOPE,
        secrets=[req.api_key],
    )
    return out_dir


def child_env(req: RunRequest) -> dict[str, str]:
    """The key and the CA bundle, as the child and evalscope's OpenAI client read them."""
    key = reveal(req.api_key)
    return {**req.tls.child_env(), **({KEY_VARIABLE: key} if key else {})}
