"""Cheap endpoint checks, run before any measurement: if one fails, the figures would not mean much.

model listed, streaming works on both APIs, usage is reported, a forced output length is honoured,
and the server counts prompt tokens as the client's tokenizer does. Every call verifies HTTPS as the
endpoint was checked (`deepseek_endpoint.tls`: the system's CAs, --deepseek-ca-bundle or --deepseek-insecure).
"""

import pytest

from pytest_deepseek.serving.endpoint_api import list_models, tokenize
from pytest_deepseek.serving.records import RequestSpec
from pytest_deepseek.serving.single import send_one

# The serving gate's preflight: `-m 'not deepseek_serving'` leaves these out with the measurements.
pytestmark = pytest.mark.deepseek_serving

PROMPT = "Explain in one sentence why the sky is blue."


def _spec(endpoint, api, max_tokens=16, forced=False):
    return RequestSpec(
        index=0, api=api, model=endpoint.model, max_tokens=max_tokens, force_output_len=forced,
        prompt=PROMPT if api == "completions" else None,
        messages=({"role": "user", "content": PROMPT},) if api == "chat" else None,
    )


def test_model_is_listed(deepseek_endpoint, deepseek_api_key):
    models = list_models(deepseek_endpoint.base_url, deepseek_api_key, tls=deepseek_endpoint.tls)
    assert deepseek_endpoint.model in models, f"{deepseek_endpoint.model!r} not in /v1/models: {models}"


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_streaming_works(deepseek_endpoint, deepseek_api_key, api):
    record = send_one(deepseek_endpoint.base_url, _spec(deepseek_endpoint, api),
                      api_key=deepseek_api_key, tls=deepseek_endpoint.tls)
    assert record.success, f"streamed {api} request failed: {record.error_kind}: {record.error_detail}"
    assert record.event_times, "no token event in the stream"
    assert record.done_seen or record.finish_reason, "the stream ended without [DONE] or a finish_reason"


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_usage_is_reported(deepseek_endpoint, deepseek_api_key, api):
    record = send_one(deepseek_endpoint.base_url, _spec(deepseek_endpoint, api),
                      api_key=deepseek_api_key, tls=deepseek_endpoint.tls)
    assert record.success, f"{record.error_kind}: {record.error_detail}"
    assert record.prompt_tokens is not None and record.completion_tokens is not None, (
        "the server sent no usage with stream_options.include_usage: output token counts would be approximate"
    )


def test_forced_output_length_is_honoured(deepseek_endpoint, deepseek_api_key):
    record = send_one(deepseek_endpoint.base_url, _spec(deepseek_endpoint, "completions", max_tokens=48, forced=True),
                      api_key=deepseek_api_key, tls=deepseek_endpoint.tls)
    if record.status == 422 or (record.status == 400 and "ignore_eos" in (record.error_detail or "")):
        pytest.fail(f"server cannot force output length: it rejected ignore_eos/min_tokens "
                    f"(HTTP {record.status}: {record.error_detail}); fixed-length scenarios cannot run here",
                    pytrace=False)
    assert record.success, f"{record.error_kind}: {record.error_detail}"
    assert record.completion_tokens == 48, (
        f"asked for exactly 48 tokens (ignore_eos + min_tokens), got {record.completion_tokens}"
    )


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_tokenizer_agrees_with_server(deepseek_endpoint, deepseek_api_key, tokenizer, api):
    api_key = deepseek_api_key
    record = send_one(deepseek_endpoint.base_url, _spec(deepseek_endpoint, api, max_tokens=4), api_key=api_key,
                      tls=deepseek_endpoint.tls)
    assert record.success and record.prompt_tokens is not None, f"{record.error_kind}: {record.error_detail}"
    if api == "chat":
        client_count = len(tokenizer.encode(tokenizer.render_chat([{"role": "user", "content": PROMPT}])))
        server_count = tokenize(deepseek_endpoint.base_url, deepseek_endpoint.model,
                                [{"role": "user", "content": PROMPT}], api_key, tls=deepseek_endpoint.tls)
    else:
        client_count = len(tokenizer.encode(PROMPT))
        server_count = tokenize(deepseek_endpoint.base_url, deepseek_endpoint.model, PROMPT, api_key,
                                tls=deepseek_endpoint.tls)
    if server_count is not None:
        assert record.prompt_tokens == server_count, (
            f"usage.prompt_tokens {record.prompt_tokens} differs from the server's own /tokenize count {server_count}"
        )
    # A constant offset (a BOS token the server adds) is aligned by the workload; more is a different tokenizer.
    assert abs(record.prompt_tokens - client_count) <= 1, (
        f"server counted {record.prompt_tokens} prompt tokens, tokenizer {tokenizer.name!r} counts {client_count}: "
        "pass the deployment's tokenizer with --deepseek-tokenizer"
    )
