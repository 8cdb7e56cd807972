"""Run lm-eval (`python -m lm_eval`) against the endpoint with task files written for local data.

`local-chat-completions` posts to `<base>/v1/chat/completions` (with `--apply_chat_template`);
`local-completions` posts raw prompts to `<base>/v1/completions` and wants a local tokenizer
offline. Both get `think_end_token='</think>'`. For the gate's datasets the runner writes a task
YAML (`dataset_path: json`, `data_files` = `<data_dir>/<dataset>.jsonl`) scored the way the answer
is asked for; any other name is passed to lm-eval as a task name, with `<data_dir>` on the include
path so task files kept there are found. The key goes in `$OPENAI_API_KEY`; a CA bundle in
`$REQUESTS_CA_BUNDLE` / `$SSL_CERT_FILE` (requests and aiohttp); `--deepseek-insecure` becomes
`verify_certificate=False`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from ...credentials import reveal
from .. import names
from ..reasoning import LM_EVAL_MODEL_ARGS, LM_EVAL_SKIP_THINKING
from ..spec import CLUEWSC_DEV, CLUEWSC_TEST, LM_EVAL, MATH_500, MMLU
from .common import BackendError, RunRequest, api_base, fresh_dir, offline_env, require_module, run_child

MMLU_PROMPT = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering."
    "\n\n{{question}}\n\nA) {{choices[0]}}\nB) {{choices[1]}}\nC) {{choices[2]}}\nD) {{choices[3]}}"
)
MATH_PROMPT = "{{problem}}\nPlease reason step by step, and put your final answer within \\boxed{}."

CLUEWSC_TASK = ("{{question}}", "{{answer}}", r"答案[:：]\s*([AB])")
# dataset -> (prompt, target, answer regex)
TASKS: dict[str, tuple[str, str, str]] = {
    CLUEWSC_DEV: CLUEWSC_TASK,
    CLUEWSC_TEST: CLUEWSC_TASK,
    MATH_500: (MATH_PROMPT, "{{answer}}", r"\\boxed\{(.*)\}"),
    MMLU: (MMLU_PROMPT, "{{target}}", r"ANSWER:\s*([A-D])"),
}


def task_yaml(dataset: str, data_file: Path, req: RunRequest) -> dict[str, Any]:
    """The lm-eval task definition for one of the gate's datasets."""
    prompt, target, pattern = TASKS[dataset]
    gen = req.generation
    kwargs: dict[str, Any] = {"until": [], "do_sample": bool(gen.temperature)}
    if gen.max_tokens is not None:
        kwargs["max_gen_toks"] = gen.max_tokens
    kwargs["temperature"] = gen.temperature or 0.0
    if gen.top_p is not None:
        kwargs["top_p"] = gen.top_p
    return {
        "task": names.to_lm_eval(dataset),
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": prompt,
        "doc_to_target": target,
        "generation_kwargs": kwargs,
        "filter_list": [{"name": "extract", "filter": [
            {"function": "regex", "regex_pattern": LM_EVAL_SKIP_THINKING + pattern},
            {"function": "take_first"},
        ]}],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


def model_args(req: RunRequest) -> tuple[str, str]:
    """(lm-eval model name, its `--model_args` string)."""
    base = api_base(req.base_url)
    gen = req.generation
    args: dict[str, Any] = {"model": req.model, "num_concurrent": gen.concurrency, **LM_EVAL_MODEL_ARGS}
    if gen.retries is not None:
        args["max_retries"] = gen.retries + 1
    if gen.timeout_s is not None:
        args["timeout"] = int(gen.timeout_s)
    if not req.tls.verify:
        args["verify_certificate"] = False
    if req.api == "chat":
        args["base_url"] = f"{base}/chat/completions"
        name = "local-chat-completions"
    else:
        args["base_url"] = f"{base}/completions"
        args["tokenized_requests"] = False
        if req.tokenizer_path is not None:
            args.update(tokenizer_backend="huggingface", tokenizer=str(req.tokenizer_path))
        else:
            args["tokenizer_backend"] = "none"
        name = "local-completions"
    return name, ",".join(f"{k}={v}" for k, v in args.items())


def command(req: RunRequest, tasks_dir: Path, out_dir: Path, tasks: list[str]) -> list[str]:
    """The `python -m lm_eval` command line."""
    model, margs = model_args(req)
    include = str(tasks_dir) + (f":{req.data_dir}" if any(req.data_dir.glob("*.yaml")) else "")
    cmd = [sys.executable, "-m", "lm_eval", "run", "--model", model, "--model_args", margs,
           "--tasks", ",".join(tasks), "--include_path", include, "--output_path", str(out_dir), "--log_samples"]
    if req.api == "chat":
        cmd.append("--apply_chat_template")
    if req.limit is not None:
        cmd += ["--limit", str(req.limit)]
    return cmd


def run(req: RunRequest) -> Path:
    """Evaluate `req.datasets` with lm-eval; returns its output folder."""
    if req.generation.repeats > 1:
        raise BackendError("repeats > 1 is not supported with lm-eval here; use the evalscope backend for repeats")
    require_module("lm_eval", LM_EVAL)
    out_dir = fresh_dir(req.work_dir, LM_EVAL)
    tasks_dir = out_dir / "tasks"
    tasks_dir.mkdir()
    tasks = []
    for dataset in req.datasets:
        if dataset in TASKS:
            data_file = req.data_dir / f"{dataset}.jsonl"
            if not data_file.is_file():
                raise BackendError(
                    f"no local data for {dataset!r}: {data_file} does not exist (datasets are never downloaded)"
                )
            spec = task_yaml(dataset, data_file.resolve(), req)
            (tasks_dir / f"{spec['task']}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False),
                                                            encoding="utf-8")
        tasks.append(names.to_lm_eval(dataset))
    run_child(command(req, tasks_dir, out_dir, tasks), log_path=out_dir / "pytest_deepseek_lm_eval.log",
              env=offline_env(child_env(req)), cwd=out_dir, timeout_s=req.timeout_s, what=LM_EVAL,
              secrets=[req.api_key])
    return out_dir


def child_env(req: RunRequest) -> dict[str, str]:
    """The key and the CA bundle, where lm-eval's API models read them."""
    key = reveal(req.api_key)
    return {**req.tls.child_env(), **({"OPENAI_API_KEY": key} if key else {})}
