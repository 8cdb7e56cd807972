"""One deployment behind several URLs, through the shipped suite: replicas the client routes over
(every one woken before the measured phase, a figure per replica in summary.json and the tables), and
a proxy measured while the replicas behind it are only woken up.

Real simulators on 127.0.0.1, a few short requests per scenario; figures are compared with wide margins.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_deepseek.testing import LOADED_BOX

from .helpers import latest_run, make_project, records, summary
from .test_serving_gate import closed_port

REPLICAS = ("sim://fast?seed=1", "sim://fast?seed=2", "sim://fast?seed=3")
PROMPTS = 9
THRESHOLDS = f"""\
version: 1
profiles:
  dp:
    nodes: 2
    %(keys)s
    serving:
      defaults: {{dataset: random, warmup: 1, client_health: {LOADED_BOX}}}
      scenarios:
        - {{input_len: 32, output_len: 16, concurrency: %(concurrency)d, num_prompts: {PROMPTS}}}
"""
QUIET = ("-p", "no:cacheprovider")


def _project(pytester: Any, *, keys: str = "", concurrency: int = 3) -> None:
    make_project(pytester, THRESHOLDS % {"keys": keys, "concurrency": concurrency})


def _truth(run: Path, folder: str) -> list[dict[str, Any]]:
    path = run / "endpoints" / folder / "sim" / "sim-truth.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _serving_entry(data: dict[str, Any]) -> dict[str, Any]:
    (entry,) = [t for t in data["tests"] if t["kind"] == "serving"]
    return entry


def test_round_robin_over_three_replicas_each_woken_first(pytester: Any) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess(*(f"--endpoint=dp={url}" for url in REPLICAS), *QUIET)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    for number, url in enumerate(REPLICAS, start=1):
        assert f"deepseek: endpoint {url} -> " in out and f"(profile dp, replica {number} of 3)" in out

    run = latest_run(pytester)
    data = summary(pytester)
    entry = _serving_entry(data)
    measured = [r for r in records(pytester) if not r["warmup"]]
    warm = [r for r in records(pytester) if r["warmup"]]
    assert len(measured) == PROMPTS and entry["metrics"]["completed"] == PROMPTS
    # round-robin: the measured requests split evenly; a wake-up per replica, then the scenario's own
    # warmup: 1 through the measuring connections (the router's first pick: replica 0)
    counts = Counter(r["endpoint"] for r in measured)
    assert set(counts) == {0, 1, 2} and max(counts.values()) - min(counts.values()) <= 1
    assert sorted(r["endpoint"] for r in warm) == [0, 0, 1, 2]

    base_urls = []
    for index in range(3):
        truth = _truth(run, f"dp.{index + 1}")
        sent_here = {r["request_id"]: r for r in records(pytester) if r["endpoint"] == index}
        assert {t["request_id"] for t in truth} == set(sent_here)  # each record names the server that answered it
        woken = [t["arrival_ns"] for t in truth if sent_here[t["request_id"]]["warmup"]]
        answered = [t["arrival_ns"] for t in truth if not sent_here[t["request_id"]]["warmup"]]
        assert len(woken) == (2 if index == 0 else 1) and answered and max(woken) < min(answered), index
        base_urls.append(data["tests"][0]["endpoints"][index]["endpoint"])

    # the figures of each replica, next to the scenario's
    figures = entry["endpoints"]
    assert [f["role"] for f in figures] == ["replica"] * 3
    assert [f["requests"] for f in figures] == [counts[i] for i in range(3)]
    assert [f["warmup"] for f in figures] == [2, 1, 1] and all(f["failed"] == 0 for f in figures)
    run_window = entry["metrics"]["output_throughput_run_window"]
    assert sum(f["output_throughput_run_window"] for f in figures) == pytest.approx(run_window, rel=1e-9)
    assert all(f["ttft_ms"]["p50"] <= f["ttft_ms"]["p99"] for f in figures)
    # per node divides by the profile's nodes, never by the number of URLs
    metrics = entry["metrics"]
    assert entry["nodes"] == 2 and metrics["nodes"] == 2
    assert metrics["output_throughput_per_node"] == pytest.approx(metrics["output_throughput"] / 2, rel=1e-12)
    assert data["run"]["endpoints"]["dp"]["replicas"] == list(REPLICAS)
    assert entry["fingerprint"]["endpoint_replicas"] == list(REPLICAS) and entry["fingerprint"]["routing"] == "round-robin"

    table = _endpoint_rows(out)
    assert [row[2] for row in table] == base_urls
    assert [int(row[3]) for row in table] == [counts[i] for i in range(3)]
    # `pytest-deepseek report` decides it again from the files alone: the same breakdown
    (run / "summary.json").unlink()
    rebuilt = subprocess.run([sys.executable, "-m", "pytest_deepseek.cli", "report", str(run), "--html",
                              str(run / "report.html")], capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _endpoint_rows(rebuilt.stdout) == table
    assert _serving_entry(json.loads((run / "summary.json").read_text()))["endpoints"] == figures
    # and the HTML report has the same breakdown
    html = (run / "report.html").read_text()
    by_endpoint = html[html.index("By endpoint"):]
    by_endpoint = by_endpoint[:by_endpoint.index("</table>")]
    assert [by_endpoint.index(url) for url in base_urls] == sorted(by_endpoint.index(url) for url in base_urls)
    for row in table:
        assert f'<td class="num">{row[3]}</td>' in by_endpoint


def _endpoint_rows(out: str) -> list[list[str]]:
    """The rows of the "serving by endpoint" table, split on spaces."""
    lines = out[out.index("serving by endpoint"):].splitlines()
    rule = next(i for i, line in enumerate(lines) if "───" in line)
    rows = []
    for line in lines[rule + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_least_outstanding_sends_more_to_the_faster_replica(pytester: Any) -> None:
    _project(pytester, keys="routing: least-outstanding", concurrency=2)
    result = pytester.runpytest_subprocess("--endpoint=dp=sim://fast?step_base_ms=2",
                                           "--endpoint=dp=sim://fast?step_base_ms=40", *QUIET)
    result.assert_outcomes(passed=1)
    measured = [r for r in records(pytester) if not r["warmup"]]
    counts = Counter(r["endpoint"] for r in measured)
    assert counts[0] > counts[1], counts  # 20x faster decode steps: it frees its slot far more often
    assert _serving_entry(summary(pytester))["fingerprint"]["routing"] == "least-outstanding"


def test_a_proxy_is_measured_while_the_ranks_behind_it_are_only_woken(pytester: Any) -> None:
    ranks = ("sim://fast?seed=11", "sim://fast?seed=12")
    _project(pytester, keys=f"warmup_endpoints: [{', '.join(json.dumps(url) for url in ranks)}]")
    result = pytester.runpytest_subprocess("--endpoint=dp=sim://fast?seed=10", *QUIET)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert f"deepseek: endpoint {ranks[0]} -> " in out and "(profile dp, warm-up only)" in out

    run = latest_run(pytester)
    lines = records(pytester)
    proxy = _truth(run, "dp")
    measured = [r for r in lines if not r["warmup"]]
    assert {r["endpoint"] for r in measured} == {0} and len(measured) == PROMPTS
    assert {t["request_id"] for t in proxy} >= {r["request_id"] for r in measured}  # all measured traffic: the proxy
    first_measured = min(t["arrival_ns"] for t in proxy if t["request_id"] in {r["request_id"] for r in measured})
    for number in (1, 2):
        truth = _truth(run, f"dp.warmup{number}")
        assert len(truth) == 1 and truth[0]["arrival_ns"] < first_measured  # one request each, before measuring
        assert truth[0]["status"] == 200
    entry = _serving_entry(summary(pytester))
    assert [(f["role"], f["requests"], f["warmup"]) for f in entry["endpoints"]] == [
        ("replica", PROMPTS, 1), ("warm-up", 0, 1), ("warm-up", 0, 1)]
    assert summary(pytester)["run"]["endpoints"]["dp"]["warmup_endpoints"] == list(ranks)
    assert "2 warm-up only" in out


def test_a_replica_that_fails_its_warm_up_is_an_error_naming_it(pytester: Any) -> None:
    _project(pytester)
    result = pytester.runpytest_subprocess("--endpoint=dp=sim://fast?seed=1",
                                           "--endpoint=dp=sim://fast?seed=2&fault_http_500=every:1", *QUIET)
    result.assert_outcomes(failed=1)
    entry = _serving_entry(summary(pytester))
    assert entry["verdict"] == "error"
    (problem,) = entry["errors"]
    second = summary(pytester)["run"]["endpoints"]["dp"]["base_url"]  # the first replica's: the failing one differs
    assert re.search(r"replica 2 of 2 \(http://127\.0\.0\.1:\d+/v1\) failed its warm-up request \(http_5xx", problem)
    assert second not in problem
    assert "replica 2 of 2" in result.stdout.str()
    assert not [r for r in records(pytester) if not r["warmup"]]  # nothing was measured


def test_a_dead_replica_stops_the_run_at_the_start_naming_it(pytester: Any) -> None:
    _project(pytester)
    dead = f"http://user:secret@127.0.0.1:{closed_port()}/v1"
    result = pytester.runpytest_subprocess("--endpoint=dp=sim://fast?seed=1", f"--endpoint=dp={dead}", *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "profile dp, replica 2 of 2: endpoint http://***@127.0.0.1:" in err and "is not usable" in err
    assert "secret" not in err + result.stdout.str()


def test_an_endpoints_file_is_the_deployment_of_the_run(pytester: Any) -> None:
    _project(pytester, concurrency=2)
    (pytester.path / "replicas.txt").write_text(f"# two ranks\n{REPLICAS[0]}\n{REPLICAS[1]}  # the second\n")
    result = pytester.runpytest_subprocess("--deepseek-endpoints-file=replicas.txt", *QUIET)
    result.assert_outcomes(passed=1)
    counts = Counter(r["endpoint"] for r in records(pytester) if not r["warmup"])
    assert set(counts) == {0, 1} and abs(counts[0] - counts[1]) <= 1
    assert "serving by endpoint" in result.stdout.str()
