"""The accuracy pass rule (ACCURACY.md): errors first, then `min:` and `reference: ± tolerance:`.

- A record that is missing, errored, incomplete, has fewer items than expected, carries problems,
  or whose config version/hash differs from the one the thresholds name (`version:`,
  `config_hash:`) or from the reference run's version is an **error**, never a pass.
- `min: X`: pass when score >= X.
- `reference: R, tolerance: t`: with totals only, pass when score >= R - t; the binomial standard
  error (or a measured `spread:`) gives the interval and says whether n items can resolve t at all.
  With per-item reference results (`reference_results:`), a score below R - t fails only when a
  paired test (exact McNemar; paired bootstrap when items average repeats) shows the drop is not
  churn between items at the configured confidence; otherwise it passes with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..verdict import Verdict
from .. import stats
from .read import ResultsError
from .records import ItemResult, ScoreRecord
from .reference import Reference, load_reference

PASS: Verdict = "pass"
FAIL: Verdict = "fail"
ERROR: Verdict = "error"
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class AccuracyCheck:
    """The verdict on one dataset, with what was expected and measured.

    `reason` is expected vs measured (or why the record cannot be judged); `warnings` are apart.
    """

    dataset: str
    verdict: Verdict
    value: float | None
    threshold: float | None
    reason: str
    warnings: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """One line: dataset, verdict, reason, then the warnings."""
        text = f"{self.dataset}: {self.verdict}: {self.reason}"
        return text + (". warning: " + " ".join(self.warnings) if self.warnings else "")


def judge(
    entry: Mapping[str, Any],
    record: ScoreRecord | None,
    *,
    expected_items: int | None = None,
    base_dir: Path | None = None,
) -> AccuracyCheck:
    """Judge one `accuracy.datasets` entry against its score record.

    `expected_items` (e.g. from the command line) overrides the entry's `expected_items`;
    `base_dir` resolves a relative `reference_results` path (the thresholds file's folder).
    """
    name = str(entry.get("name", record.dataset if record else "?"))
    confidence = float(entry.get("confidence", DEFAULT_CONFIDENCE))
    expected = expected_items if expected_items is not None else entry.get("expected_items")
    problem = _error(entry, record, expected)
    if problem is not None or record is None:
        return _error_check(name, record, problem or "no score record", confidence)
    reference: Reference | None = None
    if entry.get("reference_results") is not None:
        path = Path(str(entry["reference_results"]))
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            reference = load_reference(path, name)
        except ResultsError as exc:
            return _error_check(name, record, str(exc), confidence)
        # Only the version: evalscope's config hash also covers the endpoint URL and model name.
        changed = _changed(record, reference.config_version, None)
        if changed:
            why = f"{changed} differs from the reference run's ({reference.source})"
            return _error_check(name, record, why, confidence)
    return _decide(name, entry, record, reference, confidence)


def _error(entry: Mapping[str, Any], record: ScoreRecord | None, expected: Any) -> str | None:
    """Why the record cannot be judged, or None."""
    if record is None:
        return "no score for this dataset in the results"
    if record.problems:
        return "; ".join(record.problems)
    if record.errored > 0:
        return (f"{record.errored} item(s) errored; a run with failed requests is never a pass "
                "(evalscope drops errored items from its score)")
    if record.incomplete:
        done = f" ({record.n} of {record.requested} items scored)" if record.requested is not None else ""
        return f"the run is incomplete{done}"
    if record.score is None:
        return "no score"
    if expected is not None and (record.n is None or record.n < int(expected)):
        return f"scored {record.n if record.n is not None else 'an unknown number of'} items, expected {int(expected)}"
    return _changed(record, entry.get("version"), entry.get("config_hash"))


def _changed(record: ScoreRecord, version: Any, config_hash: Any) -> str | None:
    if version is not None and str(version) != str(record.config_version):
        return f"config version {record.config_version} (expected {version})"
    if config_hash is not None and str(config_hash) != str(record.config_hash):
        return f"config hash {record.config_hash} (expected {config_hash})"
    return None


def _base_metrics(record: ScoreRecord | None, confidence: float) -> dict[str, Any]:
    if record is None:
        return {"score": None, "n": None, "errored": None, "interval": None}
    interval = None
    if record.score is not None and record.n:
        lo, hi = stats.wilson_interval(record.score / 100.0, record.n, confidence)
        interval = [round(100 * lo, 2), round(100 * hi, 2)]
    return {
        "score": record.score,
        "n": record.n,
        "errored": record.errored,
        "incomplete": record.incomplete,
        "interval": interval,
        "confidence": confidence,
        "backend": record.backend,
        "config_version": record.config_version,
    }


def _error_check(name: str, record: ScoreRecord | None, why: str, confidence: float) -> AccuracyCheck:
    where = f" [{record.backend}: {record.source}]" if record is not None and record.source else ""
    return AccuracyCheck(
        dataset=name,
        verdict=ERROR,
        value=None if record is None else record.score,
        threshold=None,
        reason=f"{why}{where}",
        metrics=_base_metrics(record, confidence),
    )


def _items_text(score: float, n: int | None) -> str:
    if n is None:
        return f"{score:.2f}%"
    right = score * n / 100.0
    shown = f"{right:.0f}" if abs(right - round(right)) < 0.05 else f"{right:.1f}"
    return f"{score:.2f}% ({shown}/{n})"


def _decide(
    name: str, entry: Mapping[str, Any], record: ScoreRecord, reference: Reference | None, confidence: float
) -> AccuracyCheck:
    assert record.score is not None
    score, n = record.score, record.n
    metrics = _base_metrics(record, confidence)
    spread = entry.get("spread")
    if spread is not None:
        half = stats.z(0.5 + confidence / 2.0) * float(spread)
        metrics["interval"] = [round(score - half, 2), round(score + half, 2)]
        metrics["spread"] = float(spread)
    parts: list[str] = []
    warnings: list[str] = []
    verdict = PASS
    threshold: float | None = None
    if entry.get("min") is not None:
        floor = float(entry["min"])
        threshold = floor
        ok = score >= floor
        verdict = PASS if ok else FAIL
        gap = "" if n is None else f", {abs(score - floor) * n / 100:.1f} items {'above' if ok else 'below'}"
        parts.append(f"min {floor:.2f}%: measured {_items_text(score, n)}{gap}")
    ref_value = entry.get("reference")
    if ref_value is None and reference is not None and reference.items:
        ref_value = 100.0 * sum(i.score for i in reference.items) / len(reference.items)
    if ref_value is not None:
        tolerance = float(entry.get("tolerance", 0.0))
        ok, text, warns, extra = _against_reference(
            float(ref_value), tolerance, score, n, record.items, reference, spread, confidence
        )
        threshold = float(ref_value) - tolerance if threshold is None else max(threshold, float(ref_value) - tolerance)
        metrics.update(extra)
        parts.append(text)
        warnings.extend(warns)
        if not ok:
            verdict = FAIL
    if not parts:
        parts.append(f"measured {_items_text(score, n)} (no min or reference given: nothing to check)")
    return AccuracyCheck(name, verdict, score, threshold, "; ".join(parts), tuple(warnings), metrics)


def _against_reference(
    ref: float,
    tolerance: float,
    score: float,
    n: int | None,
    items: tuple[ItemResult, ...] | None,
    reference: Reference | None,
    spread: Any,
    confidence: float,
) -> tuple[bool, str, list[str], dict[str, Any]]:
    """(passed, message, warnings, metrics) for `reference: ± tolerance:`."""
    drop = ref - score
    within = score >= ref - tolerance
    extra: dict[str, Any] = {"reference": ref, "tolerance": tolerance, "drop": round(drop, 4)}
    gap_items = None if n is None else drop * n / 100.0
    extra["gap_items"] = None if gap_items is None else round(gap_items, 2)
    gap = "" if gap_items is None else f" = {abs(gap_items):.1f} item(s) {'lower' if drop >= 0 else 'higher'}"
    text = (f"reference {ref:.2f}% ± {tolerance:.2f}: measured {_items_text(score, n)}, "
            f"{abs(drop):.2f} points{gap}, threshold {ref - tolerance:.2f}%")
    resolvable, warning = _resolution(ref, tolerance, n, spread, confidence)
    extra["resolvable_drop"] = None if math.isinf(resolvable) else round(resolvable, 2)
    warnings = [] if warning is None else [warning]
    if reference is None or items is None:
        return within, text, warnings, extra
    paired = _paired(reference.items, items)
    if paired is None:
        warnings.append("per-item reference results share no item ids with this run: paired test skipped.")
        return within, text, warnings, extra
    p_value, description = paired
    extra["p_value"] = p_value
    text += f"; {description}, p = {p_value:.3g}"
    alpha = 1.0 - confidence
    if within or p_value < alpha:
        return within, text, warnings, extra
    warnings.append(
        f"the score is below the threshold but the paired test cannot tell the drop from noise "
        f"(p = {p_value:.3g} ≥ {alpha:.2g}): passed."
    )
    return True, text, warnings, extra


def _resolution(ref: float, tolerance: float, n: int | None, spread: Any, confidence: float) -> tuple[float, str | None]:
    """The smallest drop the set can detect (inf when unknown), and a warning when the tolerance is smaller."""
    if spread is None and not n:
        return math.inf, "the item count is unknown: whether the set can resolve the tolerance cannot be told."
    if spread is None and not 0.0 <= ref <= 100.0:  # per-item reference scores outside 0..1
        return math.inf, f"the reference {ref:.2f} is not a percentage: its binomial noise cannot be told."
    sd = float(spread) if spread is not None else stats.standard_error(ref / 100.0, n or 0) * 100.0
    resolvable = stats.resolvable_drop(sd, confidence)
    if math.isinf(resolvable) or tolerance >= resolvable:
        return resolvable, None
    how = "the measured spread" if spread is not None else f"{n} items"
    need = ""
    if spread is None and tolerance > 0:
        needed = stats.items_needed(ref / 100.0, tolerance / 100.0, confidence)
        need = f"; a {tolerance:.2f}-point tolerance needs about {needed:,} items"
    return resolvable, (
        f"the set is too small to resolve the tolerance: with {how} only drops of "
        f"{resolvable:.2f} points or more are detectable ({confidence:.0%} one-sided, 80% power){need}."
    )


def _paired(reference: tuple[ItemResult, ...], current: tuple[ItemResult, ...]) -> tuple[float, str] | None:
    ref = {i.id: i.score for i in reference}
    common = [(ref[i.id], i.score) for i in current if i.id in ref]
    if not common:
        return None
    binary = all(a in (0.0, 1.0) and b in (0.0, 1.0) for a, b in common)
    if binary:
        lost = sum(1 for a, b in common if a == 1.0 and b == 0.0)
        gained = sum(1 for a, b in common if a == 0.0 and b == 1.0)
        description = f"McNemar on {len(common)} paired items: {lost} lost, {gained} gained"
        return stats.mcnemar_worse(lost, gained), description
    p = stats.paired_bootstrap_worse([a for a, _ in common], [b for _, b in common])
    return p, f"paired bootstrap on {len(common)} items"
