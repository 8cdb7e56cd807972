"""Two runs compared test by test, metric by metric, with the noise of both (pure).

For each metric: the baseline's figure A, the candidate's figure B, the change (B - A, and B / A - 1),
one-sided bounds on the change at the confidence, and a verdict against the metric's tolerance:

- FAIL when the change is worse than the tolerance allows, beyond the noise (the bound on the
  better side is still worse than the tolerance);
- PASS when it is within the tolerance beyond the noise (the bound on the worse side is within it);
- INCONCLUSIVE when the runs cannot tell.

The bounds on the change combine both runs' own bounds (`change.difference_bounds`,
`change.ratio_bounds`), or come from the items both runs scored (`change.paired_score_change`).

The checks are `verdict.Check`s named `regression.<metric>`: they join a test's `GateResult` under
the one precedence rule (`with_regression`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..stats.decision import bounds_verdict, percent
from ..verdict import Check, GateResult, Verdict, combine
from .change import PairedChange, difference_bounds, paired_score_change, ratio_bounds
from .evidence import Compared, Estimate, Material
from .spec import CHECK_PREFIX, HIGHER, Direction, RegressionSpec, Tolerance

Significance = Literal["worse", "better", "no"]
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one test in two runs: the figures, the change, its bounds and the verdict.

    `low`/`high` bound the change in the tolerance's terms (a fraction for a relative tolerance,
    the metric's unit otherwise), each one-sided at `confidence`.
    """

    metric: str
    family: str
    direction: Direction
    tolerance: Tolerance
    confidence: float
    a: Estimate
    b: Estimate
    change: float | None
    relative_change: float | None
    low: float | None
    high: float | None
    verdict: Verdict
    significant: Significance
    method: str

    @property
    def allowed(self) -> float:
        """The change the tolerance allows at worst: -t for higher-is-better metrics, +t for lower."""
        return -self.tolerance.amount if self.direction == HIGHER else self.tolerance.amount

    @property
    def op(self) -> str:
        """The change must stay `>=` the allowed drop (higher is better) or `<=` the allowed rise."""
        return ">=" if self.direction == HIGHER else "<="

    @property
    def shown_change(self) -> float | None:
        """The change in the tolerance's terms."""
        return self.relative_change if self.tolerance.relative else self.change

    def message(self) -> str:
        """Baseline, candidate, change with its bounds, what the tolerance allows, the verdict."""
        what = {"pass": "within the tolerance", "fail": "worse than the tolerance allows",
                "inconclusive": "the runs cannot tell", "error": "cannot be compared"}[self.verdict]
        return (f"{self.metric}: {format_value(self.a.value)} -> {format_value(self.b.value)} "
                f"(change {self.format_change(self.shown_change)}, {percent(self.confidence)} bounds "
                f"{self.format_interval()}); allowed {self.format_change(self.allowed)} "
                f"({'higher' if self.direction == HIGHER else 'lower'} is better): "
                f"{self.verdict.upper()}, {what}")

    def why_undecided(self) -> str:
        """Why the runs cannot tell (for an INCONCLUSIVE): a missing figure, a side neither run can
        bound, or bounds on both sides of the allowed change."""
        if self.a.value is None or self.b.value is None:
            missing = [f"{side}: {est.method}" for side, est in (("A", self.a), ("B", self.b)) if est.value is None]
            return "no figure (" + "; ".join(missing) + ")"
        if self.low is None or self.high is None:
            side = "lower" if self.low is None else "upper"
            # the lower bound of B - A comes from B's lower and A's upper bound, the upper from the others
            needs = ((("B", self.b, self.b.low, "lower"), ("A", self.a, self.a.high, "upper")) if self.low is None
                     else (("B", self.b, self.b.high, "upper"), ("A", self.a, self.a.low, "lower")))
            missing = [f"{name} has no {which} bound ({est.method})" for name, est, bound, which in needs
                       if bound is None]
            return f"no {side} bound on the change: " + ("; ".join(missing) or self.method)
        return (f"the bounds {self.format_interval()} hold the allowed change {self.format_change(self.allowed)}: "
                f"longer runs would tell")

    def format_change(self, value: float | None) -> str:
        """A change as the tolerance reads: `-10.2%` or `+0.35`."""
        if value is None:
            return "n/a"
        return f"{value * 100:+.1f}%" if self.tolerance.relative else f"{value:+.4g}"

    def format_interval(self) -> str:
        """`[-13.0%, -8.7%]`, with `?` for a side the runs cannot bound."""
        low = self.format_change(self.low) if self.low is not None else "?"
        high = self.format_change(self.high) if self.high is not None else "?"
        return f"[{low}, {high}]"

    def check(self, against: str = "") -> Check:
        """The `regression.<metric>` check of a test's result."""
        return Check(
            name=f"{CHECK_PREFIX}{self.metric}", verdict=self.verdict, message=self.message(), metric=self.metric,
            op=self.op, threshold=self.allowed, value=self.shown_change, low=self.low, high=self.high,
            details={"baseline": self.a.value, "current": self.b.value, "change": self.change,
                     "relative_change": self.relative_change, "tolerance": self.tolerance.text(),
                     "direction": self.direction, "significant": self.significant, "confidence": self.confidence,
                     "method": self.method, "against": against},
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"metric": self.metric, "family": self.family, "direction": self.direction,
                "tolerance": self.tolerance.text(), "confidence": self.confidence,
                "a": self.a.value, "a_low": self.a.low, "a_high": self.a.high, "a_method": self.a.method,
                "b": self.b.value, "b_low": self.b.low, "b_high": self.b.high, "b_method": self.b.method,
                "change": self.change, "relative_change": self.relative_change,
                "relative": self.tolerance.relative, "low": self.low, "high": self.high, "allowed": self.allowed,
                "significant": self.significant, "verdict": self.verdict, "method": self.method}


def format_value(value: float | None) -> str:
    """A figure: `1,234.56`, `0.0123`, `n/a`."""
    if value is None:
        return "n/a"
    if value != 0 and abs(value) < 1:
        return f"{value:.4g}"
    return f"{value:,.2f}"


def _significance(low: float | None, high: float | None, direction: Direction) -> Significance:
    if low is not None and low > 0:
        return "better" if direction == HIGHER else "worse"
    if high is not None and high < 0:
        return "worse" if direction == HIGHER else "better"
    return "no"


def _change_bounds(tolerance: Tolerance, a: Estimate, b: Estimate, paired: PairedChange | None
                   ) -> tuple[float | None, float | None, str]:
    """Bounds on the change in the tolerance's terms, and how they were made (both figures known)."""
    assert a.value is not None and b.value is not None
    if tolerance.relative and a.value <= 0:
        return None, None, f"the baseline's figure is {a.value:g}: a relative tolerance cannot apply"
    if paired is not None:
        low, high = paired.low, paired.high
    elif tolerance.relative and b.value > 0:
        return (*ratio_bounds(a, b), f"A: {a.method}; B: {b.method}")
    else:
        low, high = difference_bounds(a, b)
    if tolerance.relative:  # a paired difference, or a candidate at zero: relative to the baseline's figure
        low = None if low is None else low / a.value
        high = None if high is None else high / a.value
    return low, high, paired.method if paired is not None else f"A: {a.method}; B: {b.method}"


def compare_metric(compared: Compared, tolerance: Tolerance, a: Estimate, b: Estimate, confidence: float,
                   paired: PairedChange | None = None) -> MetricComparison:
    """Decide one metric's change against its tolerance (see the module docstring)."""
    change: float | None = None
    rel: float | None = None
    low: float | None = None
    high: float | None = None
    method = f"A: {a.method}; B: {b.method}"
    if a.value is not None and b.value is not None:
        change = paired.change if paired is not None else b.value - a.value
        rel = b.value / a.value - 1.0 if a.value > 0 else None
        low, high, method = _change_bounds(tolerance, a, b, paired)
    shown = rel if tolerance.relative else change
    allowed = -tolerance.amount if compared.direction == HIGHER else tolerance.amount
    op = ">=" if compared.direction == HIGHER else "<="
    verdict = bounds_verdict(op, allowed, low, high) if shown is not None else "inconclusive"
    return MetricComparison(compared.metric, compared.family, compared.direction, tolerance, confidence, a, b,
                            change, rel, low, high, verdict, _significance(low, high, compared.direction), method)


@dataclass(frozen=True)
class Evidence:
    """One test of a run: its summary result and the material its figures' noise comes from."""

    nodeid: str
    result: GateResult
    material: Material

    @property
    def label(self) -> str:
        """`profile:case` (the test's scenario, dataset or training entry)."""
        return f"{self.result.profile}:{self.result.case_id}"


@dataclass(frozen=True)
class CaseComparison:
    """One test matched across the two runs: each metric's comparison, or why it was not compared."""

    kind: str
    label: str
    nodeid_a: str
    nodeid_b: str
    metrics: tuple[MetricComparison, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def verdict(self) -> Verdict:
        """ERROR > FAIL > INCONCLUSIVE > PASS over the metrics (ERROR when not compared; INCONCLUSIVE
        when no metric was compared: nothing compared is not a pass)."""
        if not self.metrics and not self.problems:
            return "inconclusive"
        return combine([m.verdict for m in self.metrics] + (["error"] if self.problems else []))

    def checks(self, against: str = "") -> list[Check]:
        """The `regression.<metric>` checks (one `regression` ERROR check when not compared)."""
        if self.problems:
            return [Check(name=CHECK_PREFIX.rstrip("."), verdict="error", message="; ".join(self.problems),
                          details={"against": against})]
        return [m.check(against) for m in self.metrics]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"kind": self.kind, "test": self.label, "nodeid_a": self.nodeid_a, "nodeid_b": self.nodeid_b,
                "verdict": self.verdict, "problems": list(self.problems),
                "metrics": [m.to_json() for m in self.metrics]}


def _untrusted(side: str, result: GateResult) -> str | None:
    if result.verdict != "error":
        return None
    why = "; ".join(result.problems) or next((c.message for c in result.checks if c.verdict == "error"), "")
    return f"{side}'s result is ERROR, its figures cannot be trusted" + (f": {why}" if why else "")


def _paired(compared: Compared, a: Material, b: Material, confidence: float) -> PairedChange | None:
    a_items, b_items = getattr(a, "items", None), getattr(b, "items", None)
    if compared.family != "accuracy" or not a_items or not b_items:
        return None
    return paired_score_change(a_items, b_items, confidence)


def compare_test(a: Evidence, b: Evidence, spec: RegressionSpec) -> CaseComparison:
    """Compare a test of the baseline (a) with the same test of the candidate (b) on every metric the
    candidate's material is compared on, at the spec's confidence (else the candidate test's own)."""
    base = CaseComparison(b.result.kind, b.label, a.nodeid, b.nodeid)
    problems = [p for p in (_untrusted("the baseline", a.result), _untrusted("the candidate", b.result)) if p]
    if problems:
        return replace(base, problems=tuple(problems))
    confidence = spec.confidence or getattr(b.material, "confidence", None) or DEFAULT_CONFIDENCE
    in_a = {c.metric for c in a.material.compared(spec)}
    metrics = []
    for compared in b.material.compared(spec):
        est_b = b.material.estimate(compared.metric, confidence)
        est_a = (a.material.estimate(compared.metric, confidence) if compared.metric in in_a
                 else Estimate.unbounded(None, "not measured in the baseline"))
        paired = _paired(compared, a.material, b.material, confidence)
        tolerance = spec.tolerance(compared.metric, compared.family)
        metrics.append(compare_metric(compared, tolerance, est_a, est_b, confidence, paired))
    return replace(base, metrics=tuple(metrics))


def match_tests(a: Sequence[Evidence], b: Sequence[Evidence]
                ) -> tuple[list[tuple[Evidence, Evidence]], list[Evidence], list[Evidence]]:
    """Pairs of the same test in both runs, then the tests only in a and only in b.

    The same test id first; then the same kind, profile and case (scenario, dataset, training entry)
    under another test id; then the same kind and case across profiles (one deployment against
    another) where that case is unique in both runs.
    """
    left, right = list(a), list(b)
    pairs: list[tuple[Evidence, Evidence]] = []
    keys = (lambda t: t.nodeid,
            lambda t: (t.result.kind, t.result.profile, t.result.case_id),
            lambda t: (t.result.kind, t.result.case_id))
    for key in keys:
        index: dict[Any, list[Evidence]] = {}
        for test in left:
            index.setdefault(key(test), []).append(test)
        counts: dict[Any, int] = {}
        for test in right:
            counts[key(test)] = counts.get(key(test), 0) + 1
        still: list[Evidence] = []
        for test in right:
            found = index.get(key(test)) or []
            if len(found) == 1 and counts[key(test)] == 1:
                pairs.append((found[0], test))
                left.remove(found[0])
            else:
                still.append(test)
        right = still
    return pairs, left, right


@dataclass(frozen=True)
class RunEvidence:
    """A run (or a saved baseline) read back: what to call it, its summary's run header, its tests."""

    label: str
    path: str
    header: Mapping[str, Any]
    tests: tuple[Evidence, ...]


@dataclass(frozen=True)
class RunComparison:
    """The candidate run against the baseline: every matched test, the unmatched ones, and what differs
    between the conditions the two were measured under."""

    a: RunEvidence
    b: RunEvidence
    tests: tuple[CaseComparison, ...]
    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()
    fingerprint: tuple[Any, ...] = ()  # fingerprint.FieldDifference
    spec: RegressionSpec = field(default_factory=RegressionSpec)

    @property
    def verdict(self) -> Verdict:
        """ERROR > FAIL > INCONCLUSIVE > PASS over the matched tests (INCONCLUSIVE without any)."""
        verdicts = [t.verdict for t in self.tests]
        return combine(verdicts) if verdicts else "inconclusive"

    @property
    def regressed(self) -> bool:
        """True when a metric is significantly worse than its tolerance allows, or a test cannot be
        compared because a run's figures cannot be trusted."""
        return any(t.verdict in ("fail", "error") for t in self.tests)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the `--json` document)."""
        return {
            "a": {"label": self.a.label, "path": self.a.path, "run": dict(self.a.header)},
            "b": {"label": self.b.label, "path": self.b.path, "run": dict(self.b.header)},
            "verdict": self.verdict, "regressed": self.regressed,
            "tolerances": {k: v.text() for k, v in self.spec.tolerances.items()},
            "confidence": self.spec.confidence,
            "tests": [t.to_json() for t in self.tests],
            "only_in_a": list(self.only_a), "only_in_b": list(self.only_b),
            "fingerprint_differences": [d.to_json() for d in self.fingerprint],
        }


def compare_runs(a: RunEvidence, b: RunEvidence, spec: RegressionSpec) -> RunComparison:
    """Every test of the candidate (b) against the same test of the baseline (a)."""
    from .fingerprint import run_differences

    pairs, only_a, only_b = match_tests(a.tests, b.tests)
    tests = tuple(compare_test(x, y, spec) for x, y in pairs)
    differences = run_differences(a.header, b.header, [(x.result.fingerprint, y.result.fingerprint) for x, y in pairs])
    return RunComparison(a, b, tests, tuple(t.nodeid for t in only_a), tuple(t.nodeid for t in only_b),
                         tuple(differences), spec)


def with_regression(result: GateResult, checks: Iterable[Check], *, allow_inconclusive: bool = False) -> GateResult:
    """The result with the regression checks added and its verdict decided again by the one rule
    (the result's own verdict, which already holds its problems, with the new checks')."""
    checks = list(checks)
    verdict = combine([result.verdict, *(c.verdict for c in checks)], allow_inconclusive=allow_inconclusive)
    return replace(result, checks=(*result.checks, *checks), verdict=verdict)
