"""The pure part of a run's fingerprint: the command line without its secrets, what a server's
answers say about it, and the facts crossing to xdist workers with the endpoint."""

from __future__ import annotations

import json

import pytest

from pytest_deepseek.credentials import ApiKey
from pytest_deepseek.endpoint import EndpointInfo
from pytest_deepseek.fingerprint import (
    DEPENDENCIES,
    ServerFacts,
    client_facts,
    model_entry_facts,
    redacted_command_line,
    redacted_url,
    server_headers,
    version_of,
)
from pytest_deepseek.serving.measure import ServingTarget
from pytest_deepseek.session import RunState
from pytest_deepseek.settings import Settings
from pytest_deepseek.thresholds import Profile
from pytest_deepseek.verdict import GateResult

SENTINEL = "sk-canary-Fp3Lq8ZxW2vN6tRk"
HALVES = (SENTINEL[:14], SENTINEL[14:])

# Each way a command line can carry the key (and a few secrets it names otherwise).
CARRYING_THE_KEY = [
    ["--deepseek-api-key", SENTINEL],
    [f"--deepseek-api-key={SENTINEL}"],
    ["-o", f"deepseek_api_key={SENTINEL}"],
    [f"-odeepseek_api_key={SENTINEL}"],
    [f"--override-ini=deepseek_api_key={SENTINEL}"],
    ["--override-ini", f"deepseek_api_key={SENTINEL}"],
    [f"--deepseek-api-k={SENTINEL}"],  # an abbreviation: caught as the key in force
    ["-k", f"not {SENTINEL}"],  # the key anywhere else
    [f"--endpoint=https://user:{SENTINEL}@gpu-01:8000/v1"],
    [f"--endpoint=big=https://gpu-01:8000/v1?api_key={SENTINEL}"],
    [f"--header=Authorization: Bearer {SENTINEL}"],
    ["--hf-token", SENTINEL],
    [f"--some-secret={SENTINEL}"],
]


def shows_sentinel(text: str) -> bool:
    return SENTINEL in text or any(half in text for half in HALVES)


@pytest.mark.parametrize("args", CARRYING_THE_KEY, ids=lambda args: args[0].split("=")[0])
@pytest.mark.parametrize("key", [ApiKey(SENTINEL), SENTINEL], ids=["ApiKey", "str"])
def test_the_key_never_appears_in_the_command_line(args: list[str], key: ApiKey | str) -> None:
    line = ["--endpoint=http://gpu-01:8000", *args, "-q", "suites/test_serving.py"]
    redacted = redacted_command_line(line, [key])
    assert not shows_sentinel(json.dumps(redacted)), redacted
    assert redacted[0] == "--endpoint=http://gpu-01:8000" and redacted[-2:] == ["-q", "suites/test_serving.py"]
    assert len(redacted) == len(line) and any("***" in part for part in redacted)


def test_option_values_are_masked_even_without_knowing_the_key() -> None:
    line = ["--deepseek-api-key", SENTINEL, f"--deepseek-api-key={SENTINEL}", "-o", f"deepseek_api_key={SENTINEL}"]
    assert redacted_command_line(line) == ["--deepseek-api-key", "***", "--deepseek-api-key=***", "-o",
                                           "deepseek_api_key=***"]


def test_what_is_no_secret_stays_as_given() -> None:
    line = ["--deepseek-api-key-file=/etc/deepseek.key", "--deepseek-api-key-file", "keys/k", "--deepseek-tokenizer",
            "deepseek-ai/DeepSeek-V3", "-o", "deepseek_model=m", "--endpoint=sim://fast?step_base_ms=8", "-k",
            "token and not slow", "-p", "no:cacheprovider"]
    assert redacted_command_line(line, [None]) == line


def test_client_facts_name_the_host_and_the_dependencies() -> None:
    facts = client_facts()
    assert isinstance(facts["hostname"], str) and facts["hostname"]
    assert set(facts["dependencies"]) == set(DEPENDENCIES)
    assert facts["dependencies"]["pytest"] == pytest.__version__


def test_the_served_models_entry_gives_its_root_owner_and_length() -> None:
    entries = [{"id": "other", "root": "x"},
               {"id": "deepseek-v3", "object": "model", "created": 1718000000, "owned_by": "vllm",
                "root": "/models/DeepSeek-V3", "parent": None, "max_model_len": 32768, "permission": [{}]}]
    assert model_entry_facts(entries, "deepseek-v3") == {
        "model_id": "deepseek-v3", "model_root": "/models/DeepSeek-V3", "model_owned_by": "vllm",
        "max_model_len": 32768, "model_created": 1718000000}
    assert model_entry_facts(entries, "absent") == {}
    bare = model_entry_facts([{"id": "m", "max_model_len": "n/a", "root": {"odd": 1}}], "m")
    assert bare["model_root"] is None and bare["max_model_len"] is None and bare["model_owned_by"] is None


def test_versions_are_read_from_either_shape() -> None:
    assert version_of({"version": "0.8.5"}) == "0.8.5"
    assert version_of({"version": "0.4.6", "api_key": SENTINEL, "tp_size": 8}) == "0.4.6"
    assert version_of("1.2.3") == "1.2.3"
    assert version_of({"versions": []}) is None and version_of([1]) is None and version_of({"version": ""}) is None


def test_only_the_headers_naming_the_server_are_kept() -> None:
    received = [("content-type", "application/json"), ("Server", "uvicorn"), ("set-cookie", f"s={SENTINEL}"),
                ("authorization", f"Bearer {SENTINEL}"), ("x-powered-by", "vLLM"), ("via", "1.1 gateway"),
                ("www-authenticate", "Bearer")]
    assert server_headers(received) == (("server", "uvicorn"), ("x-powered-by", "vLLM"), ("via", "1.1 gateway"))


def test_server_facts_cross_to_workers_and_old_json_still_loads() -> None:
    facts = ServerFacts(version="0.8.5", version_route="/version", model_id="m", model_root="/models/m",
                        model_owned_by="vllm", max_model_len=4096, model_created=1, headers=(("server", "uvicorn"),))
    info = EndpointInfo(url="http://h:8000", base_url="http://h:8000/v1", model="m", models=("m",), simulated=False,
                        server=facts)
    data = json.loads(json.dumps(info.to_json()))
    assert data["server"]["headers"] == {"server": "uvicorn"}
    assert EndpointInfo.from_json(data) == info
    old = {k: v for k, v in data.items() if k != "server"}
    assert EndpointInfo.from_json(old).server == ServerFacts()
    assert hash(info) == hash(EndpointInfo.from_json(data))


def test_a_results_fingerprint_leaves_out_the_ever_changing_created() -> None:
    facts = ServerFacts(version="v", model_root="r", model_created=123, headers=(("server", "s"),))
    assert facts.fingerprint() == {"server_version": "v", "model_root": "r", "model_owned_by": None,
                                   "max_model_len": None, "server_headers": {"server": "s"}}


def test_junit_carries_a_few_fingerprint_fields() -> None:
    result = GateResult(kind="serving", profile="p", case_id="c", verdict="pass",
                        fingerprint={"server_version": "0.8.5", "model_root": "/models/m", "engine": "vllm",
                                     "hardware": None, "prompt_set_hash": "abc", "command_line": ["-x"]})
    props = dict(result.junit_properties())
    assert props["deepseek.fingerprint.server_version"] == "0.8.5"
    assert props["deepseek.fingerprint.model_root"] == "/models/m" and props["deepseek.fingerprint.engine"] == "vllm"
    assert props["deepseek.fingerprint.prompt_set_hash"] == "abc"
    assert "deepseek.fingerprint.hardware" not in props and "deepseek.fingerprint.command_line" not in props


@pytest.mark.parametrize("given", [("--deepseek-api-key", SENTINEL), (f"--deepseek-api-key={SENTINEL}",)])
def test_the_run_header_records_the_command_line_without_the_key(given: tuple[str, ...]) -> None:
    settings = Settings(api_key=ApiKey(SENTINEL))
    state = RunState(settings=settings, run_id="r", started="now", command_line=("--endpoint=sim://fast", *given, "-x"))
    header = state.run_header()
    assert not shows_sentinel(json.dumps(header))
    assert header["command_line"][0] == "--endpoint=sim://fast" and header["command_line"][-1] == "-x"
    assert set(header["fingerprint"]) >= {"hostname", "dependencies", "server_version", "server_headers",
                                          "plugin_version", "python"}
    assert header["fingerprint"]["server_version"] is None  # no endpoint: no server facts, same shape


@pytest.mark.parametrize(("url", "shown"), [
    (f"https://user:{SENTINEL}@gpu-01:8000/v1", "https://***@gpu-01:8000/v1"),
    (f"http://{SENTINEL}@gpu-01/v1", "http://***@gpu-01/v1"),
    (f"HTTPS://u:{SENTINEL}@[::1]:8000", "HTTPS://***@[::1]:8000"),
    (f"https://h/v1?key={SENTINEL}&model=m", "https://h/v1?key=***&model=m"),
    (f"https://h/v1?Token={SENTINEL}#top", "https://h/v1?Token=***#top"),
    (f"https://h/v1?x-api-key={SENTINEL}&apikey={SENTINEL}", "https://h/v1?x-api-key=***&apikey=***"),
    (f"https://h/v1?access_token={SENTINEL}&secret={SENTINEL}&password={SENTINEL}&sig={SENTINEL}",
     "https://h/v1?access_token=***&secret=***&password=***&sig=***"),
    (f"https://u:{SENTINEL}@h/v1?api_key={SENTINEL}", "https://***@h/v1?api_key=***"),
])
def test_a_url_is_written_without_its_credentials(url: str, shown: str) -> None:
    assert redacted_url(url) == shown and not shows_sentinel(redacted_url(url))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/v1", "https://gpu-01:8000/v1?model=m&keys_seen=3&monkey=1", "https://h/v1?token",
    "sim://fast?step_base_ms=8&fail_every=3", "sim://deepseek-v3?content_key=abc&seed=1", "gpu-01:8000/v1", "",
])
def test_a_url_without_credentials_stays_as_given(url: str) -> None:
    """Keys merely containing a secret's word stay; a `sim://` query is options, never secrets."""
    assert redacted_url(url) == url


def endpoint_info(url: str, base_url: str, model: str = "m") -> EndpointInfo:
    return EndpointInfo(url=url, base_url=base_url, model=model, models=(model,), simulated=False)


def test_the_run_header_and_fingerprints_name_endpoints_without_credentials() -> None:
    raw = f"https://user:{SENTINEL}@gpu-01:8000/v1?token={SENTINEL}"
    one = endpoint_info(raw, f"https://user:{SENTINEL}@gpu-01:8000/v1")
    other = endpoint_info(f"http://{SENTINEL}@gpu-02/v1", f"http://{SENTINEL}@gpu-02/v1", model="n")
    shown, base = "https://***@gpu-01:8000/v1?token=***", "https://***@gpu-01:8000/v1"
    single = RunState(settings=Settings(), run_id="r", started="now", command_line=(f"--endpoint={raw}",),
                      endpoint=one)
    header = single.run_header()
    assert (header["endpoint"], header["endpoint_url"], header["fingerprint"]["endpoint_url"]) == (base, shown, shown)
    assert single.fingerprint(Profile(name="p"))["endpoint_url"] == shown
    assert header["command_line"] == [f"--endpoint={shown}"]
    several = RunState(settings=Settings(), run_id="r", started="now", command_line=(), endpoint=one,
                       endpoints={"a": one, "b": other})
    header = several.run_header()
    assert header["endpoints"]["a"]["url"] == shown and header["endpoints"]["a"]["base_url"] == base
    assert header["endpoints"]["b"]["url"] == "http://***@gpu-02/v1"
    assert set(header["fingerprint"]["servers"]) == {shown, "http://***@gpu-02/v1"}
    assert several.fingerprint(Profile(name="b"))["endpoint_url"] == "http://***@gpu-02/v1"
    assert not shows_sentinel(json.dumps(header))
    assert one.base_url.startswith(f"https://user:{SENTINEL}@")  # what the client connects with is unchanged


def test_an_endpoints_repr_and_the_journals_target_mask_the_credentials() -> None:
    info = endpoint_info(f"https://user:{SENTINEL}@gpu-01/v1", f"https://user:{SENTINEL}@gpu-01/v1")
    assert not shows_sentinel(repr(info)) and "base_url='https://***@gpu-01/v1'" in repr(info)
    assert EndpointInfo.from_json(info.to_json()) == info  # workers still get the URL to connect to
    target = ServingTarget(base_url=info.base_url, model="m", api="completions")
    assert target.to_json()["base_url"] == "https://***@gpu-01/v1"
