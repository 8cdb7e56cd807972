"""What differs between two runs' conditions is always said: every differing field, never a hidden one."""

from __future__ import annotations

from pytest_deepseek.regression.fingerprint import differing_fields, field_text, run_differences

SESSION = {"plugin_version": "0.1.0", "python": "3.11.9", "model": "deepseek-ai/DeepSeek-V3", "engine": "vllm",
           "hardware": "H800", "nodes": 2, "devices_per_node": 8, "thresholds_sha256": "aaa",
           "endpoint_url": "http://h800:8000/v1", "tokenizer": "deepseek-v3"}


def test_differing_fields_include_a_field_only_one_side_has() -> None:
    a = {**SESSION, "prompt_set_hash": "p1"}
    b = {**SESSION, "prompt_set_hash": "p1", "hardware": "H20", "engine_version": "0.8.5"}
    assert differing_fields(a, b) == {"hardware": ("H800", "H20"), "engine_version": ("-", "0.8.5")}
    assert differing_fields(a, a) == {}
    assert field_text(["a.log", "b.log"]) == '["a.log","b.log"]' and field_text(None) == "-"


def test_run_differences_gather_tests_then_the_run_header() -> None:
    h800 = {**SESSION, "prompt_set_hash": "p1"}
    h20 = {**SESSION, "hardware": "H20", "nodes": 4, "thresholds_sha256": "bbb", "prompt_set_hash": "p1"}
    other_prompts = {**h20, "prompt_set_hash": "p2"}
    pairs = [(h800, h20), (h800, other_prompts), (SESSION, SESSION)]
    header_a = {"model": "deepseek-ai/DeepSeek-V3", "endpoint_url": "http://h800:8000/v1", "simulated": False,
                "id": "1"}
    header_b = {**header_a, "endpoint_url": "http://h20:8000/v1", "id": "2"}
    differences = run_differences(header_a, header_b, pairs)
    shown = [(d.field, d.a, d.b, d.where) for d in differences]
    assert shown == [
        ("hardware", ("H800",), ("H20",), "2 of 3 test(s)"),
        ("nodes", ("2",), ("4",), "2 of 3 test(s)"),
        ("prompt_set_hash", ("p1",), ("p2",), "1 of 3 test(s)"),
        ("thresholds_sha256", ("aaa",), ("bbb",), "2 of 3 test(s)"),
        ("endpoint_url", ("http://h800:8000/v1",), ("http://h20:8000/v1",), "run header"),
    ]
    assert differences[0].to_json() == {"field": "hardware", "a": ["H800"], "b": ["H20"], "where": "2 of 3 test(s)"}
    assert run_differences(header_a, header_a, [(SESSION, SESSION)]) == []
    with_fingerprint = {**header_a, "fingerprint": {"engine_version": "0.8.5"}}
    assert [(d.field, d.a, d.b, d.where) for d in run_differences(header_a, with_fingerprint, [])] == [
        ("engine_version", ("-",), ("0.8.5",), "run header")]
