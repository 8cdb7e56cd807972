"""The API key: never shown by the objects that carry it, redacted from echoed text, read from its
option, variable or file in one order; the TLS options; what the evaluation backends are handed."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.accuracy.bundled import bundled_datasets_dir
from pytest_deepseek.accuracy.evaluation import EvaluationPlan
from pytest_deepseek.accuracy.generation import generation_settings
from pytest_deepseek.accuracy.run import evalscope, evalscope_child, lm_eval, opencompass
from pytest_deepseek.accuracy.run.common import BackendError, RunRequest, run_child
from pytest_deepseek.context import GateContext
from pytest_deepseek.credentials import ApiKey, bearer_headers, redact, redact_bytes, reveal
from pytest_deepseek.endpoint import EndpointInfo
from pytest_deepseek.report.store import RunFolder
from pytest_deepseek.serving.measure import ServingTarget
from pytest_deepseek.session import RunState
from pytest_deepseek.settings import SettingsError, resolve
from pytest_deepseek.tls import TlsPolicy

KEY = "sk-unit-8Hd2Lq0ZpX7wR4vN"
PEM_HEADER = "-----BEGIN CERTIFICATE-----"


def settings_from(options: dict[str, Any] | None = None, ini: dict[str, Any] | None = None,
                  env: dict[str, str] | None = None, root: Path = Path("/r"), invocation: Path | None = None):
    options, ini = options or {}, ini or {}
    return resolve(lambda n: options.get(n), lambda n: ini.get(n), environ=env or {}, rootdir=root,
                   invocation_dir=invocation)


def shows_key(text: str) -> bool:
    return KEY in text or KEY[8:] in text


# ---------------------------------------------------------------------------------------------
# ApiKey


def test_the_key_prints_as_stars_everywhere() -> None:
    key = ApiKey(KEY)
    assert repr(key) == "ApiKey('***')" and str(key) == "***" and f"{key}" == "***" and f"{key!r}" == "ApiKey('***')"
    assert "%s %r" % (key, key) == "*** ApiKey('***')"
    assert key.reveal() == KEY and reveal(key) == KEY and reveal(KEY) == KEY and reveal(None) is None
    with pytest.raises(TypeError):
        json.dumps({"key": key})  # never serialised by accident


def test_the_key_compares_hashes_and_copies_as_a_value() -> None:
    key = ApiKey(KEY)
    assert key == ApiKey(KEY) and key != ApiKey(KEY + "x") and key != KEY
    assert len({key, ApiKey(KEY)}) == 1
    assert copy.deepcopy(key) == key and pickle.loads(pickle.dumps(key)) == key


@pytest.mark.parametrize("bad", ["", "sk-two words", "sk-line\n", "sk-tab\tx", "sk-ünï", "sk-\x00nul"])
def test_a_malformed_key_is_refused_without_being_echoed(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        ApiKey(bad)
    if bad.strip():
        assert bad.strip() not in str(info.value)
    assert "printable ASCII" in str(info.value)


def test_bearer_headers() -> None:
    assert bearer_headers(ApiKey(KEY)) == {"authorization": f"Bearer {KEY}"}
    assert bearer_headers(KEY) == {"authorization": f"Bearer {KEY}"}
    assert bearer_headers(None) == {} and bearer_headers("") == {}


# ---------------------------------------------------------------------------------------------
# Redaction


def test_redact_removes_every_echoed_form() -> None:
    forms = [KEY, json.dumps(KEY)[1:-1], KEY.encode().hex(), base64.b64encode(KEY.encode()).decode(),
             base64.urlsafe_b64encode(KEY.encode()).decode(), base64.b64encode(f"Bearer {KEY}".encode()).decode()]
    for form in forms:
        text = f'{{"error": "bad key", "echo": "{form}"}}'
        assert not shows_key(redact(text, [ApiKey(KEY)])) and form not in redact(text, [ApiKey(KEY)])
        assert form.encode() not in redact_bytes(text.encode(), [KEY])
    assert redact(f"got {KEY}.", [KEY]) == "got ***."


def test_redact_removes_any_bearer_token_even_a_cut_one() -> None:
    assert redact(f"Authorization: Bearer {KEY[:14]}", []) == "Authorization: Bearer ***"
    assert redact("basic Zm9vOmJhcmJheg==", []) == "basic ***"
    assert redact("a bearer of news", []) == "a bearer of news"  # prose stays as it is


# ---------------------------------------------------------------------------------------------
# Objects that carry the key never show it


def test_no_object_carrying_the_key_shows_it(tmp_path: Path) -> None:
    settings = settings_from({"api_key": KEY})
    endpoint = EndpointInfo(url="http://h/v1", base_url="http://h/v1", model="m", models=("m",), simulated=False)
    state = RunState(settings=settings, run_id="r", started="now", endpoint=endpoint)
    context = GateContext(settings=settings, folder=RunFolder(tmp_path, "r"), endpoint=endpoint, nodeid="t",
                          tokenizer=lambda: None)  # type: ignore[arg-type,return-value]
    target = ServingTarget(base_url="http://h/v1", model="m", api="chat", api_key=settings.api_key)
    request = RunRequest(base_url="http://h/v1", model="m", api="chat", api_key=settings.api_key, datasets=("mmlu",),
                         data_dir=tmp_path, work_dir=tmp_path, generation=generation_settings({}), tokenizer_path=None,
                         opencompass_python=None, limit=None)
    plan = EvaluationPlan(backend="evalscope", datasets=("mmlu",), results=None, own_endpoint=None, model=None,
                          api="chat", api_key=settings.api_key, data_dir=None, generation=None, tokenizer_path=None,
                          opencompass_python=None, limit=None, work_dir=tmp_path)
    for thing in (settings, state, context, target, request, plan):
        assert not shows_key(repr(thing)) and not shows_key(str(thing)), type(thing).__name__
    assert settings.api_key is not None and settings.api_key.reveal() == KEY
    assert not shows_key(json.dumps(state.run_header())) and not shows_key(json.dumps(settings.overrides()))
    assert not shows_key(str(dataclasses.asdict(settings))) and not shows_key(str(dataclasses.astuple(state)))


# ---------------------------------------------------------------------------------------------
# Where the key comes from


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key.txt"
    path.write_text(f"\n  {KEY}  \n\n")
    return path


def test_key_file_from_option_environment_or_ini_is_read_once_and_stripped(key_file: Path) -> None:
    assert settings_from({"api_key_file": str(key_file)}).api_key == ApiKey(KEY)
    assert settings_from(env={"DEEPSEEK_API_KEY_FILE": str(key_file)}).api_key == ApiKey(KEY)
    assert settings_from(ini={"deepseek_api_key_file": str(key_file)}).api_key == ApiKey(KEY)
    settings = settings_from({"api_key_file": str(key_file)})
    key_file.write_text("sk-changed-afterwards")
    assert settings.api_key == ApiKey(KEY) and settings.api_key_file == key_file


def test_where_the_key_comes_from_first_found_wins(key_file: Path) -> None:
    file = str(key_file)
    assert settings_from({"api_key": "sk-option"}, env={"DEEPSEEK_API_KEY_FILE": file}).api_key == ApiKey("sk-option")
    assert settings_from({"api_key_file": file}, env={"DEEPSEEK_API_KEY": "sk-env"}).api_key == ApiKey(KEY)
    assert settings_from(env={"DEEPSEEK_API_KEY": "sk-env", "DEEPSEEK_API_KEY_FILE": file}).api_key == ApiKey("sk-env")
    assert settings_from(env={"DEEPSEEK_API_KEY_FILE": file, "OPENAI_API_KEY": "sk-o"}).api_key == ApiKey(KEY)
    assert settings_from(ini={"deepseek_api_key_file": file}, env={"OPENAI_API_KEY": "sk-o"}).api_key == ApiKey(KEY)
    assert settings_from(env={"OPENAI_API_KEY": "sk-o"}).api_key == ApiKey("sk-o")
    with pytest.raises(SettingsError, match="not both"):
        settings_from({"api_key": "sk-option", "api_key_file": file})


def test_a_relative_key_file_is_taken_from_where_pytest_started(key_file: Path) -> None:
    settings = settings_from({"api_key_file": key_file.name}, invocation=key_file.parent)
    assert settings.api_key == ApiKey(KEY)
    from_ini = settings_from(ini={"deepseek_api_key_file": key_file.name}, root=key_file.parent)
    assert from_ini.api_key == ApiKey(KEY)


@pytest.mark.parametrize(("content", "message"), [
    ("", "is empty"), ("  \n", "is empty"), (f"{KEY}\n# second line", "without spaces"),
    (f"{KEY} trailing-word", "without spaces"),
])
def test_a_bad_key_file_is_a_clear_error_without_its_content(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "key"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message) as info:
        settings_from({"api_key_file": str(path)})
    assert str(path) in str(info.value) and not shows_key(str(info.value))


def test_a_missing_or_binary_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read the API key file .*No such file"):
        settings_from({"api_key_file": str(tmp_path / "absent")})
    (tmp_path / "bin").write_bytes(b"\xff\xfe" + KEY.encode())
    with pytest.raises(SettingsError, match="not UTF-8 text"):
        settings_from({"api_key_file": str(tmp_path / "bin")})


def test_a_bad_key_in_the_environment_names_the_variable_not_the_key() -> None:
    with pytest.raises(SettingsError, match=r"\$DEEPSEEK_API_KEY: .*without spaces") as info:
        settings_from(env={"DEEPSEEK_API_KEY": f"{KEY} {KEY}"})
    assert not shows_key(str(info.value))
    with pytest.raises(SettingsError, match="--deepseek-api-key is empty"):
        settings_from({"api_key": " "})


# ---------------------------------------------------------------------------------------------
# TLS options


def test_tls_defaults_to_the_system_cas() -> None:
    settings = settings_from()
    assert settings.tls == TlsPolicy() and settings.tls.verify and settings.tls.ca_bundle is None
    assert settings.tls.child_env() == {} and "system CAs" in settings.tls.describe()
    assert settings.tls.ssl_context().verify_mode.name == "CERT_REQUIRED"


def test_without_a_system_ca_file_the_default_falls_back_to_certifi(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_deepseek import tls

    (tmp_path / "empty.pem").write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "empty.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    tls._context.cache_clear()
    try:
        assert TlsPolicy().ssl_context().cert_store_stats()["x509_ca"] > 0
    finally:
        tls._context.cache_clear()


def test_insecure_only_when_asked() -> None:
    assert not settings_from({"insecure": True}).tls.verify
    assert not settings_from(ini={"deepseek_insecure": True}).tls.verify
    assert settings_from({"insecure": False}).tls.verify
    policy = settings_from({"insecure": True}).tls
    assert "OFF" in policy.describe() and policy.ssl_context().verify_mode.name == "CERT_NONE"
    assert policy.child_env() == {}


def test_ca_bundle_must_exist_and_hold_certificates(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        settings_from({"ca_bundle": str(tmp_path / "absent.pem")})
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(SettingsError, match="no CA certificate could be loaded"):
        settings_from({"ca_bundle": str(tmp_path / "junk.pem")})
    with pytest.raises(SettingsError, match="not both"):
        settings_from({"ca_bundle": str(tmp_path / "junk.pem"), "insecure": True})


def test_ca_bundle_from_option_environment_or_ini(system_bundle: Path, tmp_path: Path) -> None:
    assert settings_from({"ca_bundle": str(system_bundle)}).ca_bundle == system_bundle
    assert settings_from(env={"DEEPSEEK_CA_BUNDLE": str(system_bundle)}).tls.ca_bundle == str(system_bundle)
    relative = settings_from(ini={"deepseek_ca_bundle": system_bundle.name}, root=system_bundle.parent)
    assert relative.ca_bundle == system_bundle
    env = relative.tls.child_env()
    assert env == {"SSL_CERT_FILE": str(system_bundle), "REQUESTS_CA_BUNDLE": str(system_bundle)}
    assert TlsPolicy(ca_bundle=str(tmp_path)).child_env()["SSL_CERT_DIR"] == str(tmp_path)


@pytest.fixture
def system_bundle(tmp_path: Path) -> Path:
    """A copy of a CA bundle that loads (the one certifi ships)."""
    import certifi

    path = tmp_path / "cas.pem"
    path.write_text(Path(certifi.where()).read_text())
    assert PEM_HEADER in path.read_text()
    return path


# ---------------------------------------------------------------------------------------------
# What the evaluation backends are handed


def run_request(backend: str, tmp_path: Path, **changes: Any) -> RunRequest:
    values: dict[str, Any] = dict(
        base_url="https://h/v1", model="m", api="chat", api_key=ApiKey(KEY), datasets=("cluewsc-dev",),
        data_dir=bundled_datasets_dir(backend), work_dir=tmp_path, generation=generation_settings({}),
        tokenizer_path=tmp_path, opencompass_python=None, limit=None)
    values.update(changes)
    return RunRequest(**values)


def test_evalscope_gets_the_key_in_the_environment_only(tmp_path: Path, system_bundle: Path) -> None:
    req = run_request("evalscope", tmp_path, tls=TlsPolicy(ca_bundle=str(system_bundle)))
    config = evalscope.task_config(req, tmp_path)
    assert "api_key" not in config and not shows_key(json.dumps(config))
    env = evalscope.child_env(req)
    assert env[evalscope_child.KEY_VARIABLE] == KEY and env["SSL_CERT_FILE"] == str(system_bundle)


def test_evalscope_refuses_insecure_rather_than_ignoring_it(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot skip certificate verification.*--deepseek-ca-bundle"):
        evalscope.run(run_request("evalscope", tmp_path, tls=TlsPolicy(verify=False)))


def test_the_evalscope_child_puts_the_environment_key_in_the_task(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    fake = types.ModuleType("evalscope")
    fake.TaskConfig = lambda **kw: kw  # type: ignore[attr-defined]
    fake.run_task = lambda task_cfg: seen.update(task_cfg)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "evalscope", fake)
    spec = tmp_path / "task.json"
    spec.write_text(json.dumps({"model": "m"}))
    monkeypatch.setenv(evalscope_child.KEY_VARIABLE, KEY)
    assert evalscope_child.main([str(spec)]) == 0
    assert seen == {"model": "m", "api_key": KEY}
    monkeypatch.delenv(evalscope_child.KEY_VARIABLE)
    seen.clear()
    evalscope_child.main([str(spec)])
    assert seen == {"model": "m"}  # evalscope's own default ('EMPTY')


def test_lm_eval_gets_the_key_and_the_tls_policy(tmp_path: Path, system_bundle: Path) -> None:
    secure = run_request("lm-eval", tmp_path, tls=TlsPolicy(ca_bundle=str(system_bundle)))
    _, args = lm_eval.model_args(secure)
    assert "verify_certificate" not in args and not shows_key(args)
    assert not any(shows_key(part) for part in lm_eval.command(secure, tmp_path, tmp_path, ["t"]))
    env = lm_eval.child_env(secure)
    assert env["OPENAI_API_KEY"] == KEY and env["REQUESTS_CA_BUNDLE"] == env["SSL_CERT_FILE"] == str(system_bundle)
    _, insecure_args = lm_eval.model_args(run_request("lm-eval", tmp_path, tls=TlsPolicy(verify=False)))
    assert "verify_certificate=False" in insecure_args


def test_opencompass_config_names_no_key(tmp_path: Path, system_bundle: Path) -> None:
    req = run_request("opencompass", tmp_path, tls=TlsPolicy(ca_bundle=str(system_bundle)))
    text = opencompass.config_text(req)
    assert "key='ENV'" in text and not shows_key(text) and "http_client_cfg" not in text
    assert opencompass.child_env(req)["OPENAI_API_KEY"] == KEY
    assert "key='EMPTY'" in opencompass.config_text(run_request("opencompass", tmp_path, api_key=None))
    insecure = opencompass.config_text(run_request("opencompass", tmp_path, tls=TlsPolicy(verify=False)))
    assert "http_client_cfg=dict(verify=False)" in insecure
    with pytest.raises(BackendError, match="comma") as info:
        opencompass.child_env(run_request("opencompass", tmp_path, api_key=ApiKey("sk-a,sk-b")))
    assert "sk-a" not in str(info.value)


def test_a_backend_echoing_the_key_is_scrubbed_from_its_folder_and_the_error(tmp_path: Path) -> None:
    script = (f"import base64, pathlib, sys; k = {KEY!r}; "
              "pathlib.Path('out.json').write_text('{\"k\": \"' + k + '\"}'); "
              "print('401 Unauthorized: Bearer ' + k); print(base64.b64encode(k.encode()).decode()); sys.exit(3)")
    log = tmp_path / "backend.log"
    with pytest.raises(BackendError) as info:
        run_child([sys.executable, "-c", script], log_path=log, env={}, cwd=tmp_path, timeout_s=30, what="fake",
                  secrets=[ApiKey(KEY)])
    assert "status 3" in str(info.value) and "Bearer ***" in str(info.value) and not shows_key(str(info.value))
    for path in (log, tmp_path / "out.json"):
        text = path.read_text()
        assert "***" in text and not shows_key(text)
        assert base64.b64encode(KEY.encode()).decode().rstrip("=") not in text


# ---------------------------------------------------------------------------------------------
# Records of failed requests


def _record_for(body: bytes, status: int, content_type: str) -> dict[str, Any]:
    import asyncio
    import time

    import httpx

    from pytest_deepseek.serving.client import send_request
    from pytest_deepseek.serving.records import RequestSpec

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {KEY}"  # the key does go out
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url="http://h/v1", headers=bearer_headers(ApiKey(KEY)),
                                     transport=httpx.MockTransport(answer)) as http:
            record = await send_request(http, RequestSpec(index=0, api="completions", model="m", max_tokens=2,
                                                          prompt="p"), request_id="r", t_queued=time.perf_counter_ns())
        return record.to_json_dict()

    return asyncio.run(go())


@pytest.mark.parametrize(("body", "status", "content_type"), [
    (b'{"error": "' + b"x" * 466 + f'bad key {KEY}"}}'.encode(), 401, "application/json"),  # the key at the cut
    (b"z" * 472 + f" your key: {KEY}".encode(), 200, "text/plain"),  # not a stream: "body starts ..."
    (f'data: {{"error": {{"message": "key {KEY} revoked", "code": 401}}}}\n\n'.encode(), 200, "text/event-stream"),
])
def test_a_failed_request_record_never_holds_the_key(body: bytes, status: int, content_type: str) -> None:
    record = _record_for(body, status, content_type)
    assert record["success"] is False and record["error_detail"]
    text = json.dumps(record)
    assert not shows_key(text) and KEY[8:14] not in text and KEY[-6:] not in text  # nor a cut piece of it
    assert not any("header" in name or "auth" in name for name in record if name != "t_headers")
