"""The shared line normaliser: one place that turns raw bytes into clean text lines.

UTF-8 with replacement, carriage returns (progress bars redraw with ``\\r``: the last visible
segment wins), ANSI colour, launcher prefixes (``[default3]:``, ``[rank0]:``, ``[host:3]:``,
``[1,3]<stdout>:``) whose rank is kept, and numbers with ``nan``/``inf``/thousands separators.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PREFIX = re.compile(
    r"^\[(?:(?:default|rank)?(?P<r1>\d{1,9})|[\w.\-]+:(?P<r2>\d{1,9}))\]:\s?"
    r"|^\[\d+,(?P<r3>\d{1,9})\]<std(?:out|err)>:\s?"
)
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_NUMBER_TOKEN = r"[-+]?(?:\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|inf|Inf|Infinity)"


def normalise_line(raw: str) -> tuple[str, int | None]:
    """Clean one line; return ``(text, rank)`` where rank comes from a launcher prefix."""
    if "\r" in raw:
        parts = [p for p in raw.split("\r") if p.strip()]
        raw = parts[-1] if parts else ""
    if "\x1b" in raw:
        raw = _ANSI.sub("", raw)
    rank: int | None = None
    if raw.startswith("["):
        m = _PREFIX.match(raw)
        if m:
            rank = int(m.group("r1") or m.group("r2") or m.group("r3"))
            raw = raw[m.end():]
    return raw, rank


def split_complete_lines(buffer: bytes) -> tuple[list[str], bytes]:
    """Decode the complete lines of ``buffer``; return them and the unfinished tail."""
    cut = buffer.rfind(b"\n")
    if cut < 0:
        return [], buffer
    text = buffer[: cut + 1].decode("utf-8", errors="replace")
    return text.splitlines(), buffer[cut + 1:]


def parse_number(text: str) -> float:
    """A float from a printed number: exponents, ``nan``, ``inf``, ``1,234``; ValueError otherwise."""
    try:
        return float(text)
    except ValueError:
        pass
    t = text.strip().strip("'\"")
    if _THOUSANDS.match(t):
        return float(t.replace(",", ""))
    low = t.lower()
    if low in ("nan", "-nan", "+nan"):
        return math.nan
    return float(t)


def half_unit(token: str) -> float:
    """Half a unit of the last printed digit of a number token (``0.0013`` -> 5e-05)."""
    t = token.strip().strip("'\"").replace(",", "")
    mant, _, exp = t.lower().partition("e")
    decimals = len(mant.split(".", 1)[1]) if "." in mant else 0
    scale = 10.0 ** (int(exp) if exp else 0)
    return 0.5 * 10.0 ** (-decimals) * scale


def printed_token(line: str, metric: str) -> str | None:
    """The number printed after ``metric`` in a line (``loss: 0.0013`` -> ``0.0013``)."""
    m = re.search(r"(?<![\w])" + re.escape(metric) + r"[\W_]{1,6}?(" + _NUMBER_TOKEN + ")", line)
    return m.group(1) if m else None


class StampParser:
    """Wall-clock stamps at the start of lines, cached because they change once a second."""

    _FORMATS = (
        (re.compile(r"(\d{4})[/-](\d{2})[/-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:[,.](\d{1,6}))?"), True),
        (re.compile(r"^(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})"), False),
    )

    def __init__(self) -> None:
        self._cache: dict[str, float] = {}

    def parse(self, head: str) -> float | None:
        """Seconds for the first stamp within ``head`` (the first ~40 characters of a line)."""
        hit = self._cache.get(head)
        if hit is not None:
            return hit
        value: float | None = None
        for rx, has_year in self._FORMATS:
            m = rx.search(head)
            if not m:
                continue
            g = m.groups()
            try:
                if has_year:
                    frac = float("0." + g[6]) if g[6] else 0.0
                    dt = datetime(int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]), int(g[5]))
                    value = dt.timestamp() + frac
                else:
                    # console stamps have no year: only differences matter
                    dt = datetime(2000, int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]))
                    value = dt.timestamp()
            except ValueError:
                value = None
            break
        if value is not None and len(self._cache) < 100_000:
            self._cache[head] = value
        return value
