"""The HTML report of a run folder: a real run of the three gates against the simulator, written as
one offline page, checked for its content and rendered by a real headless browser.

The browser test needs Debian's `chromium`; without it the test is skipped, unless
DEEPSEEK_REQUIRE_BROWSER=1 (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pytest_deepseek.report.entries import CollectedResult, summary_document
from pytest_deepseek.report.html import HtmlReportError, build_html_report, write_html_report
from pytest_deepseek.report.html import series
from pytest_deepseek.report.html.series import TokenArrivals, thin
from pytest_deepseek.testing import LOADED_BOX
from pytest_deepseek.verdict import Check, GateResult

needs_plots = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                 reason='the HTML report needs the html extra: pip install "pytest-deepseek[html]"')

REPO = Path(__file__).resolve().parents[2]
TOY_LOG = REPO / "tests" / "data" / "training" / "mmengine-toy"
OPENCOMPASS = next((REPO / "tests" / "data" / "eval-results" / "opencompass").iterdir())
SIM = "sim://fast?step_base_ms=6&fault_http_503=at:7"
THRESHOLDS = textwrap.dedent("""\
    version: 1
    defaults: {error_budget: 0.25}
    profiles:
      sim-html:
        nodes: 2
        devices_per_node: 4
        serving:
          defaults: {dataset: random, warmup: 2, num_prompts: 24, concurrency: 4, client_health: %(health)s}
          scenarios:
            - {input_len: 64, output_len: 16, floors: {output_throughput_per_node: 1}}
            - {input_len: 64, output_len: 32, floors: {output_throughput_per_node: 10000000}}
        training:
          - name: toy
            log: toy
            converge: {metric: loss, below: 0.0013, within: 2000, statistic: window_mean, window: 10}
            floors: {tokens_per_sec: 100}
        accuracy:
          backend: opencompass
          results: oc
          datasets:
            - {name: cluewsc-dev, reference: 66.67, tolerance: 1.0}
            - {name: math_500, min: 0.0}
    """) % {"health": LOADED_BOX}
SUITES = ("test_serving.py", "test_training.py", "test_accuracy.py")
# Titles the figures carry, one per plot the run must have.
FIGURE_TITLES = (
    "sim-html: output throughput per node by output length",
    "sim-html: latency per request",
    "in64-out16-c4 [PASS]",
    "in64-out32-c4 [FAIL]",
    "sim-html / toy [PASS]",
    "sim-html / toy: floor.tokens_per_sec [PASS]",
    "sim-html: accuracy",
)
SVG = re.compile(r"<svg\b.*?</svg>", re.S)
# Anything a browser would fetch: a remote src/href/url(), an import, a script, a stylesheet, an image.
REMOTE = re.compile(r"""\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
                    r"""|url\(\s*["']?\s*(?:https?:)?//|@import|<script\b|<link\b|<iframe\b|<img\b""", re.I)


def _real_run(pytester: pytest.Pytester) -> Path:
    """A run folder written by the three gates run as users run them: the shipped suites, serving
    against the simulator (one floor failing, one request answered 503), a training log, evaluation results."""
    for name in SUITES:
        (pytester.path / name).write_text((REPO / "suites" / name).read_text())
    (pytester.path / "thresholds.yaml").write_text(THRESHOLDS)
    (pytester.path / "pytest.ini").write_text("[pytest]\n")
    shutil.copytree(TOY_LOG, pytester.path / "toy")
    shutil.copytree(OPENCOMPASS, pytester.path / "oc")
    result = pytester.runpytest_subprocess(f"--endpoint={SIM}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1)
    root = pytester.path / "deepseek-results"
    return root / (root / "latest").read_text().strip()


@needs_plots
def test_the_report_of_a_real_run_shows_every_gate(pytester: pytest.Pytester) -> None:
    run_dir = _real_run(pytester)
    out = write_html_report(run_dir.parent, pytester.path / "report" / "run.html")  # `latest` names the run
    html = out.read_text(encoding="utf-8")
    # the header and its fingerprint
    assert html.startswith("<!DOCTYPE html>") and f"run {run_dir.name}" in html
    assert "SIMULATED engine: these figures are not a release verdict" in html
    for key in ("plugin_version", "thresholds_sha256", "endpoint_url", "tokenizer"):
        assert f"<th>{key}</th>" in html
    # serving: one table row per scenario with its figures, verdict and expected vs measured
    summary = json.loads((run_dir / "summary.json").read_text())
    serving = {t["scenario_id"]: t for t in summary["tests"] if t["kind"] == "serving"}
    for case_id, entry in serving.items():
        row = re.search(rf"<tr><td><span title=\"[^\"]*\">{case_id}</span></td>(.*?)</tr>", html, re.S)
        assert row, case_id
        cells = row.group(1)
        assert f"{entry['metrics']['output_throughput_per_node']:,.2f}" in cells
        assert f"{entry['metrics']['ttft_ms']['p99']:,.2f}" in cells and "c=4" in cells
        assert f"v-{entry['verdict']}" in cells and "output_throughput_per_node &gt;= " in cells
    assert serving["in64-out32-c4"]["verdict"] == "fail"
    # training and accuracy tables
    assert "window_mean(10)" in html and "&lt; 0.0013" in html and "floor.tokens_per_sec" in html
    assert "cluewsc-dev" in html and "reference 66.67 ± 1.00" in html and "min 0.00" in html
    # an <svg> per plot, each with its title; nothing fetched from anywhere
    svgs = SVG.findall(html)
    assert len(svgs) == len(FIGURE_TITLES)
    for title in FIGURE_TITLES:
        assert any(title in svg for svg in svgs), title
    assert not REMOTE.search(html), REMOTE.search(html)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # figures in one document never share an id
    assert "could not be drawn" not in html and "no training plots" not in html
    assert build_html_report(run_dir, out.parent) == html  # the same folder gives the same page
    # failures: the failing floor, and the injected 503 by kind with its request id
    failures = html[html.index('id="failures"'):]
    assert "in64-out32-c4" in failures and "v-fail" in failures
    failed = [e for t in serving.values() for e in (t["failures"]["examples"] or {}).get("http_5xx", [])]
    assert failed and failed[0]["request_id"] in failures
    # links are relative and lead to the raw material
    hrefs = re.findall(r'href="([^"#][^"]*)"', html)
    assert hrefs and not any(h.startswith("/") for h in hrefs)
    for name in ("summary.json", "records.jsonl", "test_result.csv", ".log", "toy", "oc"):
        match = next(h for h in hrefs if h.endswith(name))
        assert (out.parent / match).exists(), match


@needs_plots
def test_a_moved_run_folder_still_links_to_its_records(pytester: pytest.Pytester, tmp_path: Path) -> None:
    run_dir = _real_run(pytester)
    moved = tmp_path / "artifacts" / run_dir.name
    shutil.copytree(run_dir, moved)
    shutil.rmtree(run_dir)
    out = write_html_report(moved, moved / "report.html")
    html = out.read_text(encoding="utf-8")
    assert 'href="records.jsonl"' in html and 'href="logs/' in html
    assert len(SVG.findall(html)) == len(FIGURE_TITLES)  # the records were found in their new place


def test_the_report_renders_in_a_headless_browser(pytester: pytest.Pytester, tmp_path: Path) -> None:
    browser = _browser()
    run_dir = _real_run(pytester)
    out = write_html_report(run_dir, tmp_path / "report.html")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,3000"]
    dom = subprocess.run([*common, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in ("serving", "training", "accuracy", "failures", "raw"):
        assert f'id="{section}"' in dom.stdout
    assert dom.stdout.count("<svg") == len(FIGURE_TITLES)
    png = tmp_path / "report.png"
    shot = subprocess.run([*common, f"--screenshot={png}", out.as_uri()], capture_output=True, text=True,
                          timeout=180)
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    _assert_not_blank(png)


def _browser() -> str:
    """The headless browser (and the plotting library the page needs), else a skip, or a failure
    under DEEPSEEK_REQUIRE_BROWSER=1."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = [] if found else ["chromium is not installed (Debian: apt-get install -y chromium)"]
    if importlib.util.find_spec("matplotlib") is None:
        missing.append('matplotlib is not installed (pip install "pytest-deepseek[html]")')
    if not missing:
        return str(found)
    if os.environ.get("DEEPSEEK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"DEEPSEEK_REQUIRE_BROWSER=1 but {'; '.join(missing)}")
    pytest.skip(f"{'; '.join(missing)}; DEEPSEEK_REQUIRE_BROWSER=1 turns this skip into a failure")


def _assert_not_blank(png: Path) -> None:
    """A real page: mostly white, with enough ink and colours for tables, text and figures."""
    from PIL import Image  # matplotlib's own dependency: present with the html extra

    with Image.open(png) as image:
        assert image.size == (1400, 3000)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        ink = sum(count for count, colour in colours if sum(colour) < 600) / (image.size[0] * image.size[1])
    assert len(colours) > 100, len(colours)
    assert 0.01 < ink < 0.6, ink


# -- pieces, without a run -------------------------------------------------------------------------

SERVER_BODY = '<script>alert("x")</script><img src="https://evil.example/x.png">'


def _hand_made_run(tmp_path: Path) -> Path:
    """A run folder holding only a summary: a serving ERROR whose texts carry a hostile error body."""
    run_dir = tmp_path / "results" / "run-1"
    run_dir.mkdir(parents=True)
    check = Check("floor.output_throughput_per_node", "fail", f"measured 1.00; server said {SERVER_BODY}",
                  metric="output_throughput_per_node", op=">=", threshold=5.0, value=1.0, low=0.5, high=1.5)
    result = GateResult.decide(
        "serving", "p<b>", "in8-out8-c1", [check], problems=[f"error_rate: {SERVER_BODY}"], simulated=True,
        metrics={"output_throughput_per_node": 1.0, "completed": 3, "failed": 1},
        locations={"records": str(run_dir / "records.jsonl"), "log": None},
        details={"scenario": {"input_len": 8, "output_len": 8, "concurrency": 1, "mode": "closed"},
                 "failures": {"measured": 4, "failed": 1, "by_kind": {"http_5xx": 1},
                              "examples": {"http_5xx": [{"request_id": "req-42", "index": 3, "status": 503,
                                                         "detail": SERVER_BODY}]}, "notes": {}}},
    )
    document = summary_document({"id": "run-1", "simulated": True, "endpoint": SERVER_BODY},
                                [CollectedResult("t.py::test[x]", "failed", result)])
    (run_dir / "summary.json").write_text(json.dumps(document))
    return run_dir


@needs_plots
def test_every_text_from_the_results_is_escaped(tmp_path: Path) -> None:
    run_dir = _hand_made_run(tmp_path)
    html = build_html_report(run_dir, tmp_path)
    assert "<script" not in html and "<img" not in html and not REMOTE.search(html)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "p&lt;b&gt;" in html and "req-42" in html and "503" in html
    assert "no finished records" in html  # the summary names records that are not there: said, not fatal
    assert build_html_report(run_dir, tmp_path) == html  # the same folder gives the same page


def test_a_missing_plotting_library_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _hand_made_run(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(HtmlReportError, match=re.escape('pip install "pytest-deepseek[html]"')):
        write_html_report(run_dir, tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HtmlReportError, match="not a pytest-deepseek run folder"):
        write_html_report(tmp_path, tmp_path / "report.html")


def test_token_arrivals_merge_into_the_same_histogram_as_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(series, "_COMPACT_AT", 20)  # merged into the grid many times on the way
    arrivals = TokenArrivals()
    times = [1_000_000_000 + 7_000_000 * k for k in range(300)]
    for start in range(0, 300, 7):  # record by record
        arrivals.add(times[start:start + 7], np.ones(len(times[start:start + 7])))
    t_s, per_s, width = arrivals.per_second(1_000_000_000, times[-1] + 1, buckets=10)
    assert width == pytest.approx(0.2093, rel=1e-3) and len(t_s) == 10
    assert float((per_s * width).sum()) == pytest.approx(300)


def test_thinning_keeps_the_spikes() -> None:
    x = list(range(10_000))
    y = [1.0] * 10_000
    y[4321] = 50.0
    curve = thin(x, y, points=100)
    assert curve.x.size == 100 and curve.thinned and curve.points == 10_000
    assert float(curve.hi.max()) == 50.0 and float(curve.lo.min()) == 1.0
