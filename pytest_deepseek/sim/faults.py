"""Which fault, if any, hits generation request number n (pure: no I/O, no clock).

A fault is chosen per request by a selector (`fault_<name>=<selector>` sim options):

    every:N        every Nth generation request (numbered from 1 in arrival order)
    prob:P         each request with probability P, drawn from the sim seed, the fault name and
                   the request number (the same config picks the same requests, run after run)
    at:N,N,...     exactly those request numbers

When several faults select the same request, the first in `FAULT_NAMES` wins. That order puts
a fault that acts earlier in a request's life before one that acts later: the server stops
listening, the connection drops before the headers, an error status replaces the answer, the
headers come slowly, the stream ends early, the stream never ends, the stream is damaged but
completes.

How the simulator plays them (app.py, stream.py, http.py, server.py): both resets are TCP
resets (RST); a stream with `slow_headers` starts generating once its last header byte is out
(a non-streamed answer is generated first, then its head trickles); midstream faults act at the
step that reaches half the planned tokens (a request with no output token is not cut); the
truth record names the fault (`fault`), says what broke (`error`: None for stall, slow_headers,
no_done and no_usage when the answer completes) and has status 0 when no status line was sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

REFUSED = "refused"
RESET_BEFORE_HEADERS = "reset_before_headers"
RATE_LIMITED = "rate_limited"
SLOW_HEADERS = "slow_headers"
RESET_MIDSTREAM = "reset_midstream"
TRUNCATED = "truncated"
ERROR_EVENT = "error_event"
ENDLESS = "endless"
MALFORMED = "malformed"
STALL = "stall"
NO_DONE = "no_done"
NO_USAGE = "no_usage"

# HTTP status answered (with a JSON error body) instead of a generation.
STATUS_FAULTS: dict[str, int] = {"http_500": 500, "http_502": 502, "http_503": 503, RATE_LIMITED: 429}

# Every fault name, in precedence order (the first that selects a request wins).
FAULT_NAMES: tuple[str, ...] = (
    REFUSED,
    RESET_BEFORE_HEADERS,
    *STATUS_FAULTS,
    SLOW_HEADERS,
    RESET_MIDSTREAM,
    TRUNCATED,
    ERROR_EVENT,
    ENDLESS,
    MALFORMED,
    STALL,
    NO_DONE,
    NO_USAGE,
)

# Faults that act once half of the output tokens have been emitted.
MIDSTREAM_FAULTS = frozenset({RESET_MIDSTREAM, TRUNCATED, ERROR_EVENT, MALFORMED, STALL})

# Older `<key>=N` options: the same as `fault_<name>=every:N` (CLOSE_MIDSTREAM_KEY closes the
# connection mid-body with a FIN, as it always has, where fault_reset_midstream sends an RST).
CLOSE_MIDSTREAM_KEY = "fail_midstream_every"
LEGACY_KEYS: dict[str, str] = {
    "fail_every": "http_500",
    CLOSE_MIDSTREAM_KEY: RESET_MIDSTREAM,
    "error_event_every": ERROR_EVENT,
}

SELECTOR_FORMS = ("every:N", "prob:P", "at:N,N,...")


class FaultSpecError(ValueError):
    """A fault name or selector is invalid; the message lists what is valid."""


@dataclass(frozen=True)
class Selector:
    """Which request numbers a fault hits (exactly one of the three forms is set)."""

    every: int = 0
    prob: float = 0.0
    at: frozenset[int] = frozenset()

    def selects(self, number: int, *, seed: int, name: str) -> bool:
        """True when request `number` (from 1) gets the fault `name`."""
        if self.every:
            return number % self.every == 0
        if self.at:
            return number in self.at
        return self.prob > 0 and draw(seed, name, number) < self.prob


@dataclass(frozen=True)
class FaultHit:
    """The fault chosen for one request, and the option key that chose it."""

    name: str
    key: str  # "fault_<name>" or a LEGACY_KEYS key


def draw(seed: int, name: str, number: int) -> float:
    """A uniform number in [0, 1), fixed by (seed, fault name, request number)."""
    digest = hashlib.blake2b(f"{seed}/{name}/{number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _forms_help() -> str:
    return f"selectors: {', '.join(SELECTOR_FORMS)}; faults: {', '.join(FAULT_NAMES)}"


def _positive_int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FaultSpecError(f"{what}: {text!r} is not an integer") from None
    if value < 1:
        raise FaultSpecError(f"{what}: {value} must be >= 1")
    return value


def parse_selector(text: str) -> Selector:
    """A selector from its text form (`every:N`, `prob:P`, `at:N,N,...`)."""
    kind, sep, arg = text.strip().partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if not sep or not arg:
        raise FaultSpecError(f"selector {text!r} is not one of {', '.join(SELECTOR_FORMS)}")
    if kind == "every":
        return Selector(every=_positive_int(arg, f"selector {text!r}"))
    if kind == "prob":
        try:
            prob = float(arg)
        except ValueError:
            raise FaultSpecError(f"selector {text!r}: {arg!r} is not a number") from None
        if not 0.0 <= prob <= 1.0:
            raise FaultSpecError(f"selector {text!r}: the probability must be in [0, 1]")
        return Selector(prob=prob)
    if kind == "at":
        numbers = frozenset(_positive_int(part.strip(), f"selector {text!r}") for part in arg.split(","))
        return Selector(at=numbers)
    raise FaultSpecError(f"selector {text!r} is not one of {', '.join(SELECTOR_FORMS)}")


def parse_faults(faults: Mapping[str, str]) -> dict[str, Selector]:
    """Selectors by fault name; FaultSpecError (listing names and selector forms) when invalid."""
    selectors: dict[str, Selector] = {}
    for name, text in faults.items():
        if name not in FAULT_NAMES:
            raise FaultSpecError(f"unknown sim fault {name!r} (option fault_{name}); {_forms_help()}")
        try:
            selectors[name] = parse_selector(text)
        except FaultSpecError as exc:
            raise FaultSpecError(f"sim option fault_{name}={text!r}: {exc}; {_forms_help()}") from None
    return selectors


class FaultPlan:
    """The faults of one simulator, asked request by request."""

    def __init__(self, faults: Mapping[str, str], *, seed: int, legacy: Mapping[str, int] | None = None) -> None:
        selectors = parse_faults(faults)
        # (name, key, selector) in precedence order; a fault_<name> key before its legacy key.
        entries: list[tuple[str, str, Selector]] = []
        for name in FAULT_NAMES:
            if name in selectors:
                entries.append((name, f"fault_{name}", selectors[name]))
            for key, legacy_name in LEGACY_KEYS.items():
                every = (legacy or {}).get(key, 0)
                if legacy_name == name and every > 0:
                    entries.append((name, key, Selector(every=every)))
        self._entries = entries
        self.seed = seed

    def __bool__(self) -> bool:
        return bool(self._entries)

    def pick(self, number: int) -> FaultHit | None:
        """The fault request `number` (from 1) gets, or None."""
        for name, key, selector in self._entries:
            if selector.selects(number, seed=self.seed, name=name):
                return FaultHit(name, key)
        return None
