"""Prompt sets: exact token lengths by the counting tokenizer, reproducible from a seed."""

import json

import pytest

from pytest_deepseek.serving.workload import (
    PromptBuilder,
    WorkloadError,
    WorkloadParams,
    build_prompt_set,
    fit_to_length,
    prompt_set_hash,
    to_requests,
)
from pytest_deepseek.tokenizers import embedded_tokenizer


@pytest.fixture(scope="module")
def tok():
    return embedded_tokenizer()


@pytest.mark.parametrize("dataset", ["random", "sonnet"])
@pytest.mark.parametrize("api", ["completions", "chat"])
@pytest.mark.parametrize("input_len", [16, 257, 2048])
def test_exact_lengths(tok, dataset, api, input_len):
    builder = PromptBuilder(tok, api)
    params = WorkloadParams(dataset=dataset, count=5, input_len=input_len, output_len=8, api=api, prefix_len=32, seed=3)
    items = build_prompt_set(params, builder)
    assert [builder.count(item.text) for item in items] == [input_len] * 5
    if api == "chat":
        rendered = tok.render_chat([{"role": "user", "content": items[0].text}])
        assert len(tok.encode(rendered)) == input_len


def test_server_offset_is_honoured(tok):
    builder = PromptBuilder(tok, "completions", count_offset=1)  # e.g. the server adds a BOS token
    items = build_prompt_set(WorkloadParams("random", 3, 100, 8, count_offset=1), builder)
    assert {len(tok.encode(i.text)) for i in items} == {99}


def test_reproducible_and_seed_sensitive(tok):
    builder = PromptBuilder(tok, "completions")
    a = build_prompt_set(WorkloadParams("random", 4, 64, 8, seed=1), builder)
    b = build_prompt_set(WorkloadParams("random", 4, 64, 8, seed=1), builder)
    c = build_prompt_set(WorkloadParams("random", 4, 64, 8, seed=2), builder)
    assert prompt_set_hash(a) == prompt_set_hash(b) != prompt_set_hash(c)


def test_sonnet_prompts_share_a_prefix(tok):
    builder = PromptBuilder(tok, "completions")
    items = build_prompt_set(WorkloadParams("sonnet", 3, 300, 8, prefix_len=32, seed=5), builder)
    first_lines = {item.text.splitlines()[1] for item in items}
    assert first_lines == {"From fairest creatures we desire increase,"}


def test_sharegpt_and_jsonl_files(tmp_path):
    share = tmp_path / "share.json"
    share.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "hi there"}, {"from": "gpt", "value": "hello"}]},
        {"conversations": [{"from": "gpt", "value": "no human turn"}]},
    ]))
    items = build_prompt_set(WorkloadParams("sharegpt", 3, 1, 16, dataset_path=str(share)), None)
    assert [i.text for i in items] == ["hi there"] * 3 and items[0].input_len is None
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"prompt": "a", "output_len": 5}\n\n{"prompt": "b"}\n')
    items = build_prompt_set(WorkloadParams("jsonl", 3, 1, 16, dataset_path=str(lines)), None)
    assert [(i.text, i.output_len) for i in items] == [("a", 5), ("b", 16), ("a", 5)]
    lines.write_text('{"prompt": "a"}\nnot json\n')
    with pytest.raises(WorkloadError, match=r"p.jsonl:2"):
        build_prompt_set(WorkloadParams("jsonl", 1, 1, 16, dataset_path=str(lines)), None)


def test_fit_to_length_trims_and_pads():
    count = lambda text: len(text.split())  # noqa: E731
    assert count(fit_to_length("a b c d e f", 3, count, lambda n: " x" * n)) == 3
    assert count(fit_to_length("a", 4, count, lambda n: " x" * n)) == 4


def test_requests_mark_warmup_and_force_length(tok):
    builder = PromptBuilder(tok, "chat")
    items = build_prompt_set(WorkloadParams("random", 4, 32, 8, api="chat"), builder)
    specs = to_requests(items, api="chat", model="m", warmup=2, force_output_len=True)
    assert [s.warmup for s in specs] == [True, True, False, False]
    assert specs[0].messages[0]["role"] == "user" and specs[0].prompt is None and specs[0].max_tokens == 8
