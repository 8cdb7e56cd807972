"""Special functions on the standard library: the regularised incomplete beta and its inverse,
Student t and normal quantiles.

The incomplete beta comes from its continued fraction (modified Lentz), which needs a few hundred
terms at most for parameters near 10^6 (fewer away from the mean); the inverse is a safeguarded
Newton iteration on log I_x from the Abramowitz & Stegun 26.5.22 starting point, 2-7 evaluations
for Clopper-Pearson bounds. Binomial tails and Clopper-Pearson bounds are built on these, so their
cost grows only like the square root of the number of trials at worst.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

_STD_NORMAL = NormalDist()
_TINY = 1e-300
# Newton on x stops when a step is below this fraction of x (or the bracket is that narrow).
# Rounding in I_x (up to ~1e-9 relative at a + b ~ 10^6, from the lgamma terms) moves the root by
# about 1e-12 of x there, well inside the 1e-10 the bounds are tested to.
_INVERSE_RTOL = 1e-13
_INVERSE_MAX_STEPS = 200


def z(p: float) -> float:
    """Standard normal quantile z_p (z(0.95) = 1.645: the one-sided 95% bound in sd units)."""
    return _STD_NORMAL.inv_cdf(p)


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError("betainc needs 0 <= x <= 1")
    return ibeta(a, b, x, 1.0 - x)[0]


def ibeta(a: float, b: float, x: float, y: float) -> tuple[float, float]:
    """(I_x(a, b), 1 - I_x(a, b)) with y = 1 - x passed exactly by the caller.

    The one on the continued fraction's side of the mean is computed directly, so a small tail
    keeps its full relative precision; the other is its complement. Passing y avoids the rounding
    of 1 - x when x is close to 1.
    """
    if a <= 0 or b <= 0:
        raise ValueError("betainc needs a > 0 and b > 0")
    if x <= 0.0:
        return 0.0, 1.0
    if y <= 0.0:
        return 1.0, 0.0
    front = math.exp(_log_beta_front(a, b, x, y))
    # The continued fraction converges fast only below the mean; use
    # I_x(a, b) = 1 - I_y(b, a) above it.
    if x < (a + 1.0) / (a + b + 2.0):
        small = min(1.0, front * _betacf(a, b, x) / a)
        return small, 1.0 - small
    small = min(1.0, front * _betacf(b, a, y) / b)
    return 1.0 - small, small


def _log_beta_front(a: float, b: float, x: float, y: float) -> float:
    """log(x^a y^b / B(a, b)), the log of the larger of x, y taken from the smaller (log1p)."""
    log_x = math.log(x) if x <= 0.5 else math.log1p(-y)
    log_y = math.log(y) if y <= 0.5 else math.log1p(-x)
    return math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * log_x + b * log_y


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + num / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + num / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"betainc continued fraction did not converge (a={a}, b={b}, x={x})")


def betaincinv(a: float, b: float, p: float) -> float:
    """The x in [0, 1] with I_x(a, b) = p (the beta(a, b) quantile), for a, b > 0, 0 <= p <= 1."""
    if a <= 0 or b <= 0:
        raise ValueError("betaincinv needs a > 0 and b > 0")
    if not 0.0 <= p <= 1.0:
        raise ValueError("betaincinv needs 0 <= p <= 1")
    if p == 0.0 or p == 1.0:
        return p
    # Solve in the lower tail (p <= 1/2), where log I_x is well-behaved for Newton:
    # I_x(a, b) = p  <=>  I_{1-x}(b, a) = 1 - p.
    if p > 0.5:
        return _lower_tail_inverse(b, a, 1.0 - p)[1]
    return _lower_tail_inverse(a, b, p)[0]


def _lower_tail_inverse(a: float, b: float, p: float) -> tuple[float, float]:
    """(x, 1 - x) with I_x(a, b) = p <= 1/2.

    Newton on log I_x against log x (exact in one step on a power-law tail I_x ~ c x^a, and
    quadratic near the root elsewhere), kept inside a bracket that shrinks with every evaluation;
    a step that leaves the bracket or fails to halve the previous one is replaced by bisection.
    """
    log_p = math.log(p)
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    lo, hi = 0.0, 1.0
    x = _initial_guess(a, b, p)
    last_step = 1.0
    for _ in range(_INVERSE_MAX_STEPS):
        y = 1.0 - x
        value, _ = ibeta(a, b, x, y)
        if value <= 0.0:
            lo = x
            x = _bisect_point(lo, hi)
            continue
        gap = math.log(value) - log_p
        if gap == 0.0:
            return x, y
        if gap < 0.0:
            lo = x
        else:
            hi = x
        # d log I_x / d log x = x * density / I_x, the density taken in log space.
        log_slope = a * math.log(x) + (b - 1.0) * math.log1p(-x) - log_beta - math.log(value)
        inverse_slope = math.exp(_clamp(-log_slope))
        new = x * math.exp(_clamp(-gap * inverse_slope))
        if abs(new - x) <= _INVERSE_RTOL * x:
            return new, 1.0 - new  # converged (a last step may cross a bracket end by rounding)
        if not lo < new < hi or abs(new - x) > 0.5 * last_step:
            new = _bisect_point(lo, hi)
        if hi - lo <= _INVERSE_RTOL * x or hi <= _TINY:
            return new, 1.0 - new
        last_step = abs(new - x)
        x = new
    return x, 1.0 - x


def _clamp(exponent: float) -> float:
    """An exponent kept where math.exp neither overflows nor loses all precision."""
    return max(-700.0, min(700.0, exponent))


def _bisect_point(lo: float, hi: float) -> float:
    """Midpoint of a bracket, geometric when it spans orders of magnitude (roots near 0)."""
    if lo <= 0.0:
        return hi / 16.0
    if hi > 4.0 * lo:
        return math.sqrt(lo * hi)
    return 0.5 * (lo + hi)


def _initial_guess(a: float, b: float, p: float) -> float:
    """A start for the inverse: Abramowitz & Stegun 26.5.22 for a, b > 1, the power-law tail
    x ~ (p a B(a, b))^(1/a) otherwise or when the former falls outside (0, 1)."""
    if a > 1.0 and b > 1.0:
        yp = -z(p)  # A&S take the upper-tail normal point
        lam = (yp * yp - 3.0) / 6.0
        h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0))
        w = yp * math.sqrt(h + lam) / h - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) * (
            lam + 5.0 / 6.0 - 2.0 / (3.0 * h))
        guess = a / (a + b * math.exp(2.0 * w))
        if 0.0 < guess < 1.0:
            return guess
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    guess = math.exp((math.log(p * a) + log_beta) / a)
    return min(max(guess, _TINY), 0.5)


def t_cdf(t: float, df: float) -> float:
    """Student t cumulative distribution function."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if t == 0:
        return 0.5
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def _t_pdf(t: float, df: float) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """Student t quantile: the x with P(T_df <= x) = p (Newton's method from a normal start)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    q = z(p)
    # Cornish-Fisher start (first two terms), then Newton on the exact CDF.
    x = q + (q**3 + q) / (4 * df) + (5 * q**5 + 16 * q**3 + 3 * q) / (96 * df * df)
    for _ in range(100):
        err = t_cdf(x, df) - p
        step = err / _t_pdf(x, df)
        x_new = x - step
        if x_new <= 0:
            x_new = x / 2
        if abs(x_new - x) <= 1e-12 * max(1.0, abs(x)):
            return x_new
        x = x_new
    return x
