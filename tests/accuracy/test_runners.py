"""What the runners hand to each tool: evalscope TaskConfig, lm-eval tasks and command, OpenCompass config."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

from pytest_deepseek.accuracy import (
    BackendError,
    BackendMissing,
    bundled_datasets_dir,
    generation_settings,
    run_backend,
)
from pytest_deepseek.accuracy.run import evalscope, lm_eval, opencompass
from pytest_deepseek.accuracy.run.common import RunRequest, api_base, require_module

ALL = ("cluewsc-dev", "cluewsc-test", "math_500", "mmlu")


def request(backend: str, **kw) -> RunRequest:
    values = dict(base_url="http://127.0.0.1:8000", model="deepseek-ai/DeepSeek-R1", api="chat", api_key=None,
                  datasets=ALL, data_dir=bundled_datasets_dir(backend), work_dir=Path("/tmp/unused"),
                  generation=generation_settings({"temperature": 0.6, "top_p": 0.95, "max_tokens": 1024}),
                  tokenizer_path=Path("/models/tok"), opencompass_python=None, limit=None)
    values.update(kw)
    return RunRequest(**values)


@pytest.mark.parametrize("url", ["http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/chat/completions"])
def test_api_base(url: str) -> None:
    assert api_base(url) == "http://h:1/v1"


def test_evalscope_task_config() -> None:
    cfg = evalscope.task_config(request("evalscope", limit=3), Path("/out"))
    assert cfg["eval_type"] == "openai_api" and cfg["api_url"] == "http://127.0.0.1:8000/v1"
    assert cfg["datasets"] == ["general_mcq", "math_500", "mmlu"]
    mcq = cfg["dataset_args"]["general_mcq"]
    assert mcq["subset_list"] == ["cluewsc_dev", "cluewsc_test"]
    assert mcq["local_path"].endswith("evalscope/general_mcq")
    assert all(a["filters"] == {"remove_until": "</think>"} for a in cfg["dataset_args"].values())
    assert cfg["generation_config"] == {"batch_size": 8, "max_tokens": 1024, "temperature": 0.6, "top_p": 0.95}
    assert (cfg["limit"], cfg["repeats"], cfg["ignore_errors"], cfg["no_timestamp"]) == (3, 1, True, True)


def test_evalscope_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="never downloaded"):
        evalscope.task_config(request("evalscope", datasets=("gsm8k",), data_dir=tmp_path), tmp_path)


def test_lm_eval_task_files_skip_thinking() -> None:
    req = request("lm-eval")
    spec = lm_eval.task_yaml("mmlu", bundled_datasets_dir("lm-eval") / "mmlu.jsonl", req)
    assert spec["task"] == "deepseek_mmlu" and spec["dataset_path"] == "json"
    assert spec["dataset_kwargs"]["data_files"]["test"].endswith("lm-eval/mmlu.jsonl")
    pattern = spec["filter_list"][0]["filter"][0]["regex_pattern"]
    import re

    assert re.findall(pattern, "ANSWER: C (decoy)</think>ANSWER: B") == ["B"]
    assert spec["generation_kwargs"] == {"until": [], "do_sample": True, "max_gen_toks": 1024,
                                         "temperature": 0.6, "top_p": 0.95}
    assert yaml.safe_load(yaml.safe_dump(spec, allow_unicode=True)) == spec


def test_lm_eval_commands() -> None:
    chat = lm_eval.command(request("lm-eval"), Path("/t"), Path("/o"), ["deepseek_mmlu"])
    assert chat[:4] == [sys.executable, "-m", "lm_eval", "run"]
    args = chat[chat.index("--model_args") + 1]
    assert chat[chat.index("--model") + 1] == "local-chat-completions" and "--apply_chat_template" in chat
    assert "base_url=http://127.0.0.1:8000/v1/chat/completions" in args and "think_end_token=</think>" in args
    comp = lm_eval.command(request("lm-eval", api="completions", limit=5), Path("/t"), Path("/o"), ["x"])
    args = comp[comp.index("--model_args") + 1]
    assert "base_url=http://127.0.0.1:8000/v1/completions" in args and "tokenizer=/models/tok" in args
    assert "--apply_chat_template" not in comp and comp[-2:] == ["--limit", "5"]


def test_lm_eval_rejects_repeats(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="repeats"):
        lm_eval.run(request("lm-eval", work_dir=tmp_path, generation=generation_settings({"repeats": 4})))


def test_opencompass_config_text() -> None:
    text = opencompass.config_text(request("opencompass", limit=2))
    tree = ast.parse(text)
    assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert {"datasets", "models", "api_meta_template"} <= assigned
    assert "openai_api_base='http://127.0.0.1:8000/v1'" in text
    assert "tokenizer_path='/models/tok'" in text
    assert "pred_postprocessor=dict(type=extract_non_reasoning_content)" in text
    assert "extra_body=dict(top_p=0.95)" in text and "temperature=0.6" in text
    assert "abbr='deepseek-ai_DeepSeek-R1'" in text
    for abbr in ("cluewsc-dev", "cluewsc-test", "math-500", "lukaemon_mmlu_astronomy",
                 "lukaemon_mmlu_high_school_geography"):
        assert f"abbr='{abbr}'" in text
    assert "path='./data/FewCLUE/cluewsc/test_public.json'" in text
    assert "file_name='test_prm800k_500.jsonl'" in text
    assert text.count("test_range='[0:2]'") == 3 + 4


def test_opencompass_prompts_match_the_stock_configs(results_dir: Path) -> None:
    # The real run's dumped config holds the stock prompts; ours must produce the same strings.
    dumped = next((results_dir / "opencompass/20261123_094123/configs").glob("*_19165.py")).read_text()
    ours = opencompass.config_text(request("opencompass"))

    def prompts(source: str) -> set[str]:
        return {n.value.value for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.keyword) and n.arg == "prompt" and isinstance(n.value, ast.Constant)}

    assert prompts(ours) == prompts(dumped)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"generation": generation_settings({"repeats": 2})}, "repeats"),
        ({"datasets": ("gsm8k",)}, "no OpenCompass dataset definition"),
    ],
)
def test_opencompass_config_refusals(kw: dict, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        opencompass.config_text(request("opencompass", **kw))


def test_opencompass_defaults_to_the_embedded_tokenizer() -> None:
    from pytest_deepseek.tokenizers import embedded_tokenizer_dir

    text = opencompass.config_text(request("opencompass", tokenizer_path=None))
    assert f"tokenizer_path={str(embedded_tokenizer_dir())!r}" in text


def test_missing_opencompass_names_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(opencompass.shutil, "which", lambda name: None)
    with pytest.raises(BackendMissing, match="pip install opencompass==0.5.4"):
        run_backend("opencompass", base_url="http://127.0.0.1:1", model="m", datasets=["mmlu"], work_dir=tmp_path,
                    tokenizer_path=tmp_path)
    with pytest.raises(BackendMissing, match="cannot import opencompass"):
        opencompass.launcher(sys.executable)


def test_missing_python_backend_names_the_install() -> None:
    with pytest.raises(BackendMissing, match=r'pip install "pytest-deepseek\[evalscope\]"'):
        require_module("no_such_module_here", "evalscope")


def test_run_backend_rejects_unknowns(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="unknown accuracy backend"):
        run_backend("helm", base_url="x", model="m", datasets=["mmlu"], work_dir=tmp_path)
    with pytest.raises(BackendError, match="api must be"):
        run_backend("evalscope", base_url="x", model="m", api="rest", datasets=["mmlu"], work_dir=tmp_path)


def test_every_backend_is_run_read_installed_and_bundled_under_one_name() -> None:
    from pytest_deepseek.accuracy.read import READERS
    from pytest_deepseek.accuracy.run import INSTALL, RUNNERS
    from pytest_deepseek.accuracy.spec import ACCURACY_BACKENDS, ACCURACY_DATASETS

    assert set(RUNNERS) == set(READERS) == set(INSTALL) == set(ACCURACY_BACKENDS)
    assert all(bundled_datasets_dir(name).is_dir() for name in ACCURACY_BACKENDS)
    assert set(lm_eval.TASKS) == set(ACCURACY_DATASETS)
    config = opencompass.config_text(request("opencompass", datasets=ACCURACY_DATASETS))
    assert config.count("dict(\n        abbr=") >= len(ACCURACY_DATASETS)
