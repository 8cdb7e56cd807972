"""The simulator over real loopback sockets: wire format, usage, token counts, errors, metrics."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

import httpx
import pytest

from pytest_deepseek.sim.server import ThreadedSim
from pytest_deepseek.tokenizers import embedded_tokenizer

from .conftest import QUICK, start, stream, text_of

TOK = embedded_tokenizer()
PROMPT = "The quick brown fox jumps over the lazy dog."
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name three colours."}]


def completions(sim: ThreadedSim) -> str:
    return sim.base_url + "/completions"


def chat(sim: ThreadedSim) -> str:
    return sim.base_url + "/chat/completions"


def test_completions_stream_with_usage(sim: ThreadedSim, client: httpx.Client) -> None:
    body = {"model": sim.model, "prompt": PROMPT, "max_tokens": 24, "ignore_eos": True, "min_tokens": 24,
            "stream_options": {"include_usage": True}}
    result = stream(client, completions(sim), body)
    assert result.status == 200 and result.headers["content-type"].startswith("text/event-stream")
    assert result.events[-1] == "[DONE]"
    usage_chunk = result.events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["object"] == "text_completion"
    assert usage_chunk["usage"] == {"prompt_tokens": len(TOK.encode(PROMPT)), "completion_tokens": 24,
                                    "total_tokens": len(TOK.encode(PROMPT)) + 24}
    tokens = result.token_events()
    assert len(tokens) == 24
    assert all("usage" not in ev for ev in result.events[:-2])
    assert tokens[-1]["choices"][0]["finish_reason"] == "length"
    assert all(ev["choices"][0]["finish_reason"] is None for ev in tokens[:-1])
    text = text_of(tokens)
    assert len(TOK.encode(text)) == 24  # client re-tokenization agrees with usage


def test_stream_without_include_usage_has_no_usage(sim: ThreadedSim, client: httpx.Client) -> None:
    for url, body in ((completions(sim), {"prompt": PROMPT}), (chat(sim), {"messages": MESSAGES})):
        result = stream(client, url, {**body, "max_tokens": 6, "ignore_eos": True})
        assert result.events[-1] == "[DONE]"
        assert not any("usage" in ev for ev in result.events if isinstance(ev, dict))
        assert len(result.token_events()) == 6


def test_chat_stream_role_chunk_and_continuous_usage(sim: ThreadedSim, client: httpx.Client) -> None:
    body = {"model": sim.model, "messages": MESSAGES, "max_tokens": 10, "ignore_eos": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    result = stream(client, chat(sim), body)
    first = result.events[0]
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    prompt_tokens = len(TOK.encode(TOK.render_chat(MESSAGES)))
    chunks = [ev for ev in result.events if isinstance(ev, dict)]
    assert all(ev["usage"]["prompt_tokens"] == prompt_tokens for ev in chunks)
    seen = [ev["usage"]["completion_tokens"] for ev in chunks[:-1]]
    assert seen == list(range(11))  # role chunk (0), then one token per chunk
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 10
    assert len(TOK.encode(text_of(result.token_events()))) == 10


def test_non_streaming_both_apis(sim: ThreadedSim, client: httpx.Client) -> None:
    body = {"model": sim.model, "prompt": PROMPT, "max_tokens": 9, "ignore_eos": True}
    data = client.post(completions(sim), json=body).json()
    assert data["object"] == "text_completion" and data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 9 == len(TOK.encode(data["choices"][0]["text"]))
    data = client.post(chat(sim), json={"messages": MESSAGES, "max_tokens": 7, "ignore_eos": True}).json()
    assert data["object"] == "chat.completion"
    message = data["choices"][0]["message"]
    assert message["role"] == "assistant" and len(TOK.encode(message["content"])) == 7
    assert data["usage"] == {"prompt_tokens": len(TOK.encode(TOK.render_chat(MESSAGES))), "completion_tokens": 7,
                             "total_tokens": len(TOK.encode(TOK.render_chat(MESSAGES))) + 7}


def test_token_id_prompt_counts_ids(sim: ThreadedSim, client: httpx.Client) -> None:
    data = client.post(completions(sim), json={"prompt": [1, 2, 3, 4, 5], "max_tokens": 2}).json()
    assert data["usage"]["prompt_tokens"] == 5


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_min_tokens_is_exact_without_ignore_eos(api: str, client: httpx.Client) -> None:
    config = QUICK.replace(content_options={"mean_tokens": "2"})  # natural EOS early
    with start(config) as server:
        url, body = (completions(server), {"prompt": PROMPT}) if api == "completions" else (
            chat(server), {"messages": MESSAGES})
        for _ in range(4):
            usage = client.post(url, json={**body, "max_tokens": 12, "min_tokens": 12}).json()["usage"]
            assert usage["completion_tokens"] == 12
        lengths = [client.post(url, json={**body, "max_tokens": 40, "min_tokens": 5}).json()["usage"]
                   ["completion_tokens"] for _ in range(6)]
        assert all(5 <= n <= 40 for n in lengths)


def test_max_tokens_without_ignore_eos_may_stop_early(client: httpx.Client) -> None:
    with start(QUICK.replace(content_options={"mean_tokens": "8"})) as server:
        reasons = set()
        for _ in range(8):
            result = stream(client, completions(server), {"prompt": PROMPT, "max_tokens": 32,
                                                          "stream_options": {"include_usage": True}})
            n = result.events[-2]["usage"]["completion_tokens"]
            reason = result.token_events()[-1]["choices"][0]["finish_reason"]
            assert reason == ("length" if n == 32 else "stop") and 1 <= n <= 32
            reasons.add(reason)
        assert "stop" in reasons


def test_same_seed_same_output_other_seed_differs(client: httpx.Client) -> None:
    def texts(seed: int) -> list[str]:
        with start(QUICK.replace(seed=seed)) as server:
            body = {"prompt": PROMPT, "max_tokens": 30}
            return [client.post(completions(server), json=body).json()["choices"][0]["text"] for _ in range(3)]

    assert texts(7) == texts(7)
    assert texts(7) != texts(8)


def test_tokenize_matches_embedded_tokenizer(sim: ThreadedSim, client: httpx.Client) -> None:
    base = sim.base_url.removesuffix("/v1")
    data = client.post(base + "/tokenize", json={"model": sim.model, "prompt": PROMPT}).json()
    assert data["tokens"] == TOK.encode(PROMPT) and data["count"] == len(TOK.encode(PROMPT))
    assert data["max_model_len"] == QUICK.max_model_len
    data = client.post(base + "/tokenize", json={"model": sim.model, "messages": MESSAGES}).json()
    assert data["count"] == len(TOK.encode(TOK.render_chat(MESSAGES)))


def test_reasoning_comes_first(client: httpx.Client) -> None:
    with start(QUICK.replace(reasoning_tokens=5, model="deepseek-ai/DeepSeek-R1")) as server:
        result = stream(client, chat(server), {"messages": MESSAGES, "max_tokens": 12, "ignore_eos": True,
                                               "stream_options": {"include_usage": True}})
        kinds = ["reasoning" if "reasoning_content" in ev["choices"][0]["delta"] else "answer"
                 for ev in result.token_events()]
        assert kinds == ["reasoning"] * 5 + ["answer"] * 7
        assert result.events[-2]["usage"]["completion_tokens"] == 12
        data = client.post(completions(server), json={"prompt": PROMPT, "max_tokens": 12, "ignore_eos": True}).json()
        text = data["choices"][0]["text"]
        assert re.fullmatch(r"<think>( [a-z]+){5}</think>( [a-z]+){5}", text)
        assert len(TOK.encode(text)) == data["usage"]["completion_tokens"] == 12


def test_mtp_chunks_carry_several_tokens(client: httpx.Client) -> None:
    with start(QUICK.replace(tokens_per_step=4)) as server:
        result = stream(client, completions(server), {"prompt": PROMPT, "max_tokens": 13, "ignore_eos": True})
        counts = [len(TOK.encode(ev["choices"][0]["text"])) for ev in result.token_events()]
        assert counts == [1, 4, 4, 4]


def test_errors_are_json_with_status(sim: ThreadedSim, client: httpx.Client) -> None:
    resp = client.post(completions(sim), json={"model": "deepseek-ai/DeepSeek-V9", "prompt": "x"})
    assert resp.status_code == 404
    error = resp.json()["error"]
    assert sim.model in error["message"] and "DeepSeek-V9" in error["message"] and error["code"] == 404
    resp = client.post(completions(sim), content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "not JSON" in resp.json()["error"]["message"]
    resp = client.post(completions(sim), json={"prompt": "x", "max_tokens": QUICK.max_model_len})
    assert resp.status_code == 400 and "maximum context length" in resp.json()["error"]["message"]
    resp = client.post(completions(sim), json={"prompt": "x", "max_tokens": 4, "min_tokens": 5})
    assert resp.status_code == 400
    assert client.get(sim.base_url + "/nowhere").status_code == 404


def test_models_health_version(sim: ThreadedSim, client: httpx.Client) -> None:
    models = client.get(sim.base_url + "/models").json()
    assert [m["id"] for m in models["data"]] == [sim.model]
    base = sim.base_url.removesuffix("/v1")
    assert client.get(base + "/health").status_code == 200
    assert client.get(base + "/version").json()["version"]


def _counter(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def test_metrics_counters_equal_usage_sums(client: httpx.Client) -> None:
    with start(QUICK) as server:
        prompt_sum = completion_sum = 0
        for i in range(5):
            if i % 2:
                body = {"messages": MESSAGES, "max_tokens": 3 + i}
                usage = client.post(chat(server), json=body).json()["usage"]
            else:
                body = {"prompt": PROMPT * (i + 1), "max_tokens": 3 + i, "ignore_eos": True,
                        "stream_options": {"include_usage": True}}
                usage = stream(client, completions(server), body).events[-2]["usage"]
            prompt_sum += usage["prompt_tokens"]
            completion_sum += usage["completion_tokens"]
        text = client.get(server.base_url.removesuffix("/v1") + "/metrics").text
        for prefix in ("sim", "vllm"):
            assert _counter(text, f"{prefix}:prompt_tokens_total") == prompt_sum
            assert _counter(text, f"{prefix}:generation_tokens_total") == completion_sum
            assert _counter(text, f"{prefix}:request_success_total") == 5


def test_fail_every_answers_500(client: httpx.Client) -> None:
    with start(QUICK.replace(fail_every=3)) as server:
        responses = [client.post(completions(server), json={"prompt": "x", "max_tokens": 2}) for _ in range(6)]
        assert [r.status_code for r in responses] == [200, 200, 500, 200, 200, 500]
        assert responses[2].json()["error"]["type"] == "InternalServerError"


def test_midstream_failure_breaks_the_connection(client: httpx.Client) -> None:
    with start(QUICK.replace(fail_midstream_every=2)) as server:
        body = {"prompt": PROMPT, "max_tokens": 10, "ignore_eos": True}
        assert stream(client, completions(server), body).events[-1] == "[DONE]"
        with pytest.raises(httpx.RemoteProtocolError):
            stream(client, completions(server), body)
        assert stream(client, completions(server), body).events[-1] == "[DONE]"  # later requests are fine


def test_error_event_mid_stream(client: httpx.Client) -> None:
    with start(QUICK.replace(error_event_every=1)) as server:
        result = stream(client, chat(server), {"messages": MESSAGES, "max_tokens": 10, "ignore_eos": True})
        errors = [ev for ev in result.events if isinstance(ev, dict) and "error" in ev]
        assert len(errors) == 1 and errors[0]["error"]["code"] == 500
        assert len(result.token_events()) == 5
        assert result.events[-1] == "[DONE]" and result.events[-2] is errors[0]


def test_keep_alive_reuses_one_connection(sim: ThreadedSim) -> None:
    with httpx.Client(timeout=10) as client:
        for _ in range(3):
            stream(client, completions(sim), {"prompt": "x", "max_tokens": 2})
            client.post(completions(sim), json={"prompt": "x", "max_tokens": 2})
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1


def test_expect_continue_and_connection_close() -> None:
    with start(QUICK) as server:
        port = int(server.base_url.split(":")[2].split("/")[0])
        body = b'{"prompt": "hello", "max_tokens": 3}'
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n"
                         b"expect: 100-continue\r\nconnection: close\r\n\r\n" % len(body))
            assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
            sock.sendall(body)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK") and b'"completion_tokens":3' in data.replace(b" ", b"")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_streams(sim: ThreadedSim) -> None:
    out = subprocess.run(
        ["curl", "-sN", "--max-time", "10", completions(sim), "-H", "content-type: application/json",
         "-d", '{"prompt": "hi", "max_tokens": 4, "ignore_eos": true, "stream": true}'],
        capture_output=True, text=True, check=True).stdout
    events = [line for line in out.splitlines() if line.startswith("data: ")]
    assert len(events) == 5 and events[-1] == "data: [DONE]"


def test_http10_stream_is_close_delimited(sim: ThreadedSim) -> None:
    port = int(sim.base_url.split(":")[2].split("/")[0])
    body = b'{"prompt": "hello", "max_tokens": 3, "ignore_eos": true, "stream": true}'
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.0\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and b"connection: close" in head.lower()
    events = [line for line in payload.split(b"\n\n") if line]
    assert len(events) == 4 and events[-1] == b"data: [DONE]"
