"""Run OpenCompass as a subprocess in its own environment, with a config the plugin writes.

OpenCompass is installed apart (it pins torch and conflicts with evalscope's fork): the runner uses
`--deepseek-opencompass-python` (an interpreter with `opencompass` importable) or the `opencompass` command
on PATH. The config is a Python file: `OpenAISDK` on `<base>/v1` with a local `tokenizer_path`
(it counts prompt tokens and would otherwise fetch one; default: the embedded DeepSeek tokenizer)
and `extract_non_reasoning_content` (it returns `reasoning_content + '</think>' + content`);
datasets are read from `COMPASS_DATA_CACHE` (the data dir). Dataset definitions repeat the stock
FewCLUE_cluewsc_gen, MATH-500 (0-shot CoT) and MMLU (simple-evals prompt) configs, so their
version hashes match stock runs. A request that fails after its retries aborts its inference task:
that set and the sets after it in the task print `-` in the summary (an error at the gate).
The config (kept in the results) names no key: `key='ENV'` reads `$OPENAI_API_KEY` of the child.
A CA bundle reaches its httpx client as `$SSL_CERT_FILE`; `--deepseek-insecure` becomes
`http_client_cfg=dict(verify=False)`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ...credentials import reveal
from ...tokenizers import TokenizerError, embedded_tokenizer_dir
from .. import names
from ..reasoning import OPENCOMPASS_POSTPROCESSOR
from ..spec import ACCURACY_DATASETS, MATH_500, MMLU, OPENCOMPASS
from .common import (
    INSTALL,
    BackendError,
    BackendMissing,
    RunRequest,
    api_base,
    fresh_dir,
    offline_env,
    run_child,
)

HEADER = f"""\
from opencompass.datasets import CluewscDatasetV2, CustomDataset, MMLUDataset
from opencompass.evaluator import MATHVerifyEvaluator
from opencompass.models import OpenAISDK
from opencompass.openicl.icl_evaluator import AccEvaluator
from opencompass.openicl.icl_inferencer import GenInferencer
from opencompass.openicl.icl_prompt_template import PromptTemplate
from opencompass.openicl.icl_retriever import ZeroRetriever
from opencompass.utils.text_postprocessors import (
    {OPENCOMPASS_POSTPROCESSOR},
    first_capital_postprocess,
    match_answer_pattern,
)

api_meta_template = dict(round=[
    dict(role='HUMAN', api_role='HUMAN'),
    dict(role='BOT', api_role='BOT', generate=True),
])
"""

CLUEWSC_PROMPT = (
    "{text}\\n此处，“{span2}”是否指代“{span1}“？\\n"
    "A. 是\\nB. 否\\n请从”A“，”B“中进行选择。\\n答："
)
MATH_PROMPT = "{problem}\\nPlease reason step by step, and put your final answer within \\\\boxed{}."
MMLU_PROMPT = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before "
    "answering.\\n\\n{input}\\n\\nA) {A}\\nB) {B}\\nC) {C}\\nD) {D}"
)


def _test_range(limit: int | None) -> str:
    return "" if limit is None else f", test_range='[0:{limit}]'"


def _cluewsc(abbr: str, limit: int | None) -> str:
    return f"""\
    dict(
        abbr='{abbr}',
        type=CluewscDatasetV2,
        path='./data/FewCLUE/cluewsc/{names.OPENCOMPASS_CLUEWSC_FILES[abbr]}',
        reader_cfg=dict(input_columns=['span1', 'span2', 'text', 'new_text'],
                        output_column='label'{_test_range(limit)}),
        infer_cfg=dict(
            prompt_template=dict(type=PromptTemplate, template=dict(round=[
                dict(role='HUMAN', prompt='{CLUEWSC_PROMPT}'),
            ])),
            retriever=dict(type=ZeroRetriever),
            inferencer=dict(type=GenInferencer),
        ),
        eval_cfg=dict(evaluator=dict(type=AccEvaluator), pred_role='BOT',
                      pred_postprocessor=dict(type=first_capital_postprocess)),
    ),
"""


def _math(limit: int | None) -> str:
    return f"""\
    dict(
        abbr='{names.to_opencompass(MATH_500)}',
        type=CustomDataset,
        path='opencompass/math',
        file_name='test_prm800k_500.jsonl',
        reader_cfg=dict(input_columns=['problem'], output_column='solution'{_test_range(limit)}),
        infer_cfg=dict(
            prompt_template=dict(type=PromptTemplate, template=dict(round=[
                dict(role='HUMAN', prompt='{MATH_PROMPT}'),
            ])),
            retriever=dict(type=ZeroRetriever),
            inferencer=dict(type=GenInferencer),
        ),
        eval_cfg=dict(evaluator=dict(type=MATHVerifyEvaluator)),
    ),
"""


def _mmlu(subject: str, limit: int | None) -> str:
    return f"""\
    dict(
        abbr='{names.MMLU_PREFIX}{subject}',
        type=MMLUDataset,
        path='opencompass/mmlu',
        name='{subject}',
        reader_cfg=dict(input_columns=['input', 'A', 'B', 'C', 'D'], output_column='target',
                        train_split='dev'{_test_range(limit)}),
        infer_cfg=dict(
            prompt_template=dict(type=PromptTemplate, template=dict(round=[
                dict(role='HUMAN', prompt="{MMLU_PROMPT}"),
            ])),
            retriever=dict(type=ZeroRetriever),
            inferencer=dict(type=GenInferencer),
        ),
        eval_cfg=dict(evaluator=dict(type=AccEvaluator),
                      pred_postprocessor=dict(type=match_answer_pattern, answer_pattern=r'(?i)ANSWER\\s*:\\s*([A-D])')),
    ),
"""


def _embedded_tokenizer() -> Path:
    """The embedded DeepSeek tokenizer folder: OpenCompass only counts prompt tokens with it."""
    try:
        return embedded_tokenizer_dir()
    except TokenizerError as exc:
        raise BackendError(f"OpenCompass needs a local tokenizer folder (tokenizer_path): {exc}") from exc


def mmlu_subjects(data_dir: Path) -> list[str]:
    """Subjects with a test file under `<data_dir>/data/mmlu/test/`."""
    return sorted(p.name[: -len("_test.csv")] for p in (data_dir / "data" / "mmlu" / "test").glob("*_test.csv"))


def model_abbr(model: str) -> str:
    """The model's column name in OpenCompass's summary."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model)


def config_text(req: RunRequest) -> str:
    """The OpenCompass Python config for `req` (datasets, model, reasoning post-processing)."""
    tokenizer = req.tokenizer_path or _embedded_tokenizer()
    if req.generation.repeats > 1:
        raise BackendError("repeats > 1 is not supported with OpenCompass here; use the evalscope backend for repeats")
    blocks: list[str] = []
    for name in req.datasets:
        if name in names.OPENCOMPASS_CLUEWSC_FILES:
            blocks.append(_cluewsc(name, req.limit))
        elif name == MATH_500:
            blocks.append(_math(req.limit))
        elif name == MMLU:
            subjects = mmlu_subjects(req.data_dir)
            if not subjects:
                raise BackendError(f"no MMLU subjects under {req.data_dir / 'data/mmlu/test'}")
            blocks.extend(_mmlu(s, req.limit) for s in subjects)
        else:
            raise BackendError(
                f"no OpenCompass dataset definition for {name!r}; known: {', '.join(ACCURACY_DATASETS)}"
            )
    gen = req.generation
    max_out = gen.max_tokens or 4096
    extra_body = "" if gen.top_p is None else f"\n        extra_body=dict(top_p={gen.top_p!r}),"
    temperature = "" if gen.temperature is None else f"\n        temperature={gen.temperature!r},"
    insecure = "" if req.tls.verify else "\n        http_client_cfg=dict(verify=False),"
    # OpenAISDK's `retry` counts attempts: retry=0 would never send the request.
    model = f"""\
models = [
    dict(
        abbr={model_abbr(req.model)!r},
        type=OpenAISDK,
        path={req.model!r},
        key={'ENV' if reveal(req.api_key) else 'EMPTY'!r},
        openai_api_base={api_base(req.base_url)!r},
        tokenizer_path={str(tokenizer)!r},
        meta_template=api_meta_template,
        query_per_second={gen.concurrency},
        batch_size={gen.concurrency},
        retry={gen.retries + 1 if gen.retries is not None else 2},
        max_out_len={max_out},
        max_seq_len={max_out + 8192},{temperature}{extra_body}{insecure}
        pred_postprocessor=dict(type={OPENCOMPASS_POSTPROCESSOR}),
    ),
]
"""
    return HEADER + "\ndatasets = [\n" + "".join(blocks) + "]\n\n" + model


def launcher(opencompass_python: str | None) -> list[str]:
    """The command prefix that starts OpenCompass's CLI; BackendMissing with the install line if none."""
    if opencompass_python:
        probe = subprocess.run([opencompass_python, "-c", "import opencompass"], capture_output=True, text=True,
                               check=False)
        if probe.returncode != 0:
            raise BackendMissing(
                f"{opencompass_python} cannot import opencompass ({probe.stderr.strip().splitlines()[-1:]}); "
                f"install it with:\n  {INSTALL[OPENCOMPASS]}"
            )
        return [opencompass_python, "-c", "import sys; from opencompass.cli.main import main; sys.exit(main())"]
    found = shutil.which("opencompass")
    if found is None:
        raise BackendMissing(
            "the OpenCompass backend is not available: no --deepseek-opencompass-python given and no `opencompass` on PATH; "
            f"install it in its own environment with:\n  {INSTALL[OPENCOMPASS]}"
        )
    return [found]


def run(req: RunRequest) -> Path:
    """Evaluate with OpenCompass; returns its work dir (it adds a timestamped run folder inside)."""
    prefix = launcher(req.opencompass_python)
    out_dir = fresh_dir(req.work_dir, "opencompass")
    config = out_dir / "pytest_deepseek_opencompass.py"
    config.write_text(config_text(req), encoding="utf-8")
    run_child(
        [*prefix, str(config), "-w", str(out_dir), "--dump-eval-details"],
        log_path=out_dir / "pytest_deepseek_opencompass.log",
        env=offline_env({"COMPASS_DATA_CACHE": str(req.data_dir.resolve()), **child_env(req)}),
        cwd=out_dir,
        timeout_s=req.timeout_s,
        what="OpenCompass",
        secrets=[req.api_key],
    )
    return out_dir


def child_env(req: RunRequest) -> dict[str, str]:
    """The key (`key='ENV'` reads `$OPENAI_API_KEY`) and the CA bundle, for OpenCompass's child."""
    key = reveal(req.api_key)
    if key and "," in key:  # OpenCompass splits $OPENAI_API_KEY on commas (several keys in turn)
        raise BackendError("the API key contains a comma, which OpenCompass reads as a list of keys; "
                           "use the evalscope or lm-eval backend")
    return {**req.tls.child_env(), **({"OPENAI_API_KEY": key} if key else {})}
