"""HTTPS endpoints: verified against the system's CAs by default, against --deepseek-ca-bundle when
given, and not at all only with --deepseek-insecure, which the header and summary.json then say.
A local HTTPS server with a self-signed certificate stands in for a private deployment."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from pytest_deepseek.serving.client import make_http_client, send_request
from pytest_deepseek.serving.endpoint_api import EndpointError, list_models, tokenize
from pytest_deepseek.serving.records import RequestSpec
from pytest_deepseek.serving.single import send_one
from pytest_deepseek.tls import TlsPolicy

from .fake_servers import MODEL, Certificate, KeyEchoServer, self_signed_certificate
from .helpers import latest_run, make_project


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https(certificate: Certificate) -> Iterator[KeyEchoServer]:
    with KeyEchoServer(accept=True, cert=certificate) as server:
        yield server


def spec(api: str = "completions") -> RequestSpec:
    return RequestSpec(index=0, api=api, model=MODEL, max_tokens=4, prompt="hi" if api == "completions" else None,
                       messages=({"role": "user", "content": "hi"},) if api == "chat" else None)


def test_endpoint_calls_verify_against_the_system_cas_by_default(https: KeyEchoServer) -> None:
    with pytest.raises(EndpointError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        list_models(https.base_url)


def test_endpoint_calls_use_the_ca_bundle_or_skip_verification_when_asked(https: KeyEchoServer,
                                                                          certificate: Certificate) -> None:
    assert list_models(https.base_url, tls=TlsPolicy(ca_bundle=str(certificate.cert))) == [MODEL]
    assert list_models(https.base_url, tls=TlsPolicy(verify=False)) == [MODEL]
    with pytest.raises(EndpointError, match="HTTP 401"):  # /tokenize is rejected: the TLS part passed
        tokenize(https.base_url, MODEL, "hi", tls=TlsPolicy(ca_bundle=str(certificate.cert)))


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_the_measuring_client_verifies_on_both_transports(https: KeyEchoServer, certificate: Certificate,
                                                          transport: str) -> None:
    async def one(tls: TlsPolicy | None) -> tuple[bool, str | None, str | None]:
        async with make_http_client(https.base_url, concurrency=1, api_key="sk-tls", timeout_s=10,
                                    transport=transport, tls=tls) as http:  # type: ignore[arg-type]
            record = await send_request(http, spec(), request_id="r", t_queued=time.perf_counter_ns())
        return record.success, record.error_kind, record.error_detail

    ok, _, _ = asyncio.run(one(TlsPolicy(ca_bundle=str(certificate.cert))))
    assert ok
    assert asyncio.run(one(TlsPolicy(verify=False)))[0]
    ok, kind, detail = asyncio.run(one(None))
    assert not ok and kind in ("refused", "client") and "certif" in (detail or "").lower()


def test_send_one_takes_the_policy(https: KeyEchoServer, certificate: Certificate) -> None:
    record = send_one(https.base_url, spec("chat"), tls=TlsPolicy(ca_bundle=str(certificate.cert)))
    assert record.success and record.completion_tokens == 2


def _project(pytester: pytest.Pytester) -> None:
    """The endpoint and serving suites, no thresholds file (the serving gate runs an ad-hoc grid)."""
    make_project(pytester, "", suites=("test_endpoint.py", "test_serving.py"))
    (pytester.path / "thresholds.yaml").unlink()


# One tiny serving scenario: the server's fixed answers break its contract, but every request
# must have gone through TLS for the records to be successes.
GRID = ("--deepseek-input-len=16", "--deepseek-output-len=2", "--deepseek-num-prompts=4", "--deepseek-warmup=0",
        "-k", "listed or streaming or serving", "-p", "no:cacheprovider")


def _measured_over_tls(pytester: pytest.Pytester, result: pytest.RunResult) -> dict[str, object]:
    """The run header of summary.json, after checking the endpoint checks passed and every request succeeded."""
    result.stdout.fnmatch_lines(["*test_model_is_listed PASSED*"])
    assert result.parseoutcomes().get("passed", 0) >= 3
    folder = latest_run(pytester)
    lines = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    recs = [line for line in lines if "type" not in line]  # not the scenario's start and end lines
    assert len(recs) == 4 and all(r["success"] for r in recs)
    return json.loads((folder / "summary.json").read_text())["run"]


def test_a_run_without_the_ca_fails_at_start(pytester: pytest.Pytester, https: KeyEchoServer) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess(f"--endpoint={https.base_url}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "certificate verify failed" in result.stderr.str().lower()


def test_a_run_with_the_ca_bundle_verifies(pytester: pytest.Pytester, https: KeyEchoServer,
                                           certificate: Certificate) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess(f"--endpoint={https.base_url}", f"--deepseek-ca-bundle={certificate.cert}",
                                           "-v", *GRID)
    assert "WARNING: TLS" not in result.stdout.str()
    assert _measured_over_tls(pytester, result)["tls_verify"] is True


def test_insecure_is_said_in_the_header_and_the_summary(pytester: pytest.Pytester, https: KeyEchoServer) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess(f"--endpoint={https.base_url}", "--deepseek-insecure", "-v", *GRID)
    result.stdout.fnmatch_lines(["deepseek: WARNING: TLS certificate verification OFF (--deepseek-insecure)*"])
    assert _measured_over_tls(pytester, result)["tls_verify"] is False


def test_insecure_and_a_ca_bundle_together_are_a_usage_error(pytester: pytest.Pytester,
                                                             certificate: Certificate) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess("--endpoint=sim://fast", "--deepseek-insecure",
                                           f"--deepseek-ca-bundle={certificate.cert}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--deepseek-ca-bundle" in result.stderr.str() and "not both" in result.stderr.str()
