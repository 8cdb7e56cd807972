"""mmengine / XTuner: the text log (``Iter(train) [ 8859/96000]  lr: ...``, epoch mode
``Epoch(train) [e][i/n]``) and the ``vis_data/<ts>.json`` scalars (one JSON record per line).

``time`` is seconds per iteration, ``memory`` MiB, ``tokens_per_sec`` per GPU. Validation lines
(``(val)``) and validation JSON records (no ``iter`` key) are not training records.
"""

from __future__ import annotations

import math
import re
from itertools import repeat
from typing import Callable, ClassVar, Iterable, Sequence

from ..normalise import parse_number
from ..records import Record
from .base import Parser, json_metrics, json_number, json_step, parse_json

NAME = "mmengine"
_RECORD = re.compile(r"(Iter|Epoch)\(train\)\s*(?:\[\s*(\d{1,18})\])?\s*\[\s*(\d{1,18})/\s*(\d{1,18})\]\s+(.*)$")
# (?<!\w): a search restarting inside a long word fails at once (linear, not quadratic, time)
_PAIR = re.compile(r"(?<!\w)(\w+): (\S+)")
_SKIP = frozenset(("eta",))
_JSON_KEYS = ("iter", "step", "epoch")


def sniff(lines: Sequence[str]) -> bool:
    """True for mmengine text (``- mmengine -`` or ``Iter(train) [``) or vis_data JSON."""
    for line in lines:
        if " - mmengine - " in line or "Iter(train) [" in line or "Epoch(train) [" in line:
            return True
        if line.startswith("{") and '"iter"' in line and '"step"' in line and "'" not in line[:3]:
            return True
    return False


class _Layout:
    """The key order of the Iter(train) lines, learned from the first one, for the bulk path.

    ``line[after '(train) [':].split()`` then has the iteration first, the keys before ``eta`` at
    fixed positions from the start and the keys after it at fixed positions from the end
    (``eta: 18 days, 16:13:38`` spans a varying number of tokens).
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)
        if "eta" in keys:
            cut = list(keys).index("eta")
            pre, post = list(keys[:cut]), list(keys[cut + 1:])
        else:
            pre, post = list(keys), []
        self.has_eta = "eta" in keys
        self.pre_names = [k + ":" for k in pre]
        self.post_names = [k + ":" for k in post]
        self.npre, self.npost = len(pre), len(post)
        self.value_keys = tuple(pre + post)
        self.width = len(self.value_keys)
        args = [f"a{i}" for i in range(self.width)]
        body = ", ".join(f"{k!r}: {a}" for k, a in zip(self.value_keys, args))
        if "time" in self.value_keys:
            body += f", 'step_time_s': {args[self.value_keys.index('time')]}"
        # one dict display per record, fed column-wise by map(): far cheaper than dict(zip(...))
        self.build = eval(f"lambda {', '.join(args)}: {{{body}}}")  # keys are \\w+ identifiers


class MmengineParser(Parser):
    """Text log lines and vis_data JSON lines, both accepted."""

    name: ClassVar[str] = NAME
    owner: ClassVar[str] = "first"  # rank 0's local loss is what mmengine prints
    units: ClassVar[dict[str, str]] = {
        "time": "s", "data_time": "s", "step_time_s": "s", "memory": "MiB",
        "tokens_per_sec": "tokens/s per device", "tflops": "TFLOP/s per device", "lr": "",
    }

    def __init__(self) -> None:
        super().__init__()
        self._layout: _Layout | None = None

    def feed_block(self, text: str, first_lineno: int, rank: int | None,
                   other: Callable[[str, int], None]) -> None:
        """Parse a block of clean complete lines (no prefixes, colour or carriage returns) fast.

        Iter(train) lines with the learned key layout are split and converted column-wise; every
        other line goes through ``feed`` and, when it is no record, to ``other(line, lineno)``.
        """
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        feed = self.feed
        heads: list[str] = []
        vals: list[str] = []
        where: list[tuple[int, str]] = []
        layout = self._layout
        pre, post, p2, q2, tail_ok = self._shape(layout)
        for lineno, line in enumerate(lines, first_lineno):
            i = line.find("Iter(train) [")
            if i >= 0 and layout is not None:
                toks = line[i + 13:].split()
                if toks and toks[1:p2:2] == pre:
                    if q2:
                        if toks[-q2::2] == post:
                            heads.append(toks[0])
                            vals += toks[2:p2 + 1:2]
                            vals += toks[-q2 + 1::2]
                            where.append((lineno, line))
                            continue
                    elif tail_ok or len(toks) == 1 + p2:
                        heads.append(toks[0])
                        vals += toks[2:p2 + 1:2]
                        where.append((lineno, line))
                        continue
            if where:
                self._flush(layout, heads, vals, where, rank)  # type: ignore[arg-type]
                heads, vals, where = [], [], []
            if not feed(line, rank, lineno):
                other(line, lineno)
            if self._layout is not layout:
                layout = self._layout
                pre, post, p2, q2, tail_ok = self._shape(layout)
        if where:
            self._flush(layout, heads, vals, where, rank)  # type: ignore[arg-type]

    @staticmethod
    def _shape(layout: _Layout | None) -> tuple[list[str], list[str], int, int, bool]:
        if layout is None:
            return [], [], 0, 0, False
        return layout.pre_names, layout.post_names, 2 * layout.npre, 2 * layout.npost, layout.has_eta

    def _flush(self, layout: _Layout, heads: list[str], vals: list[str], where: list[tuple[int, str]],
               rank: int | None) -> None:
        try:
            its = [int(h[:h.index("/")]) for h in heads]
            floats = list(map(float, vals))
        except ValueError:
            for lineno, line in where:  # a rare odd number: take the careful path line by line
                self.feed(line, rank, lineno)
            return
        n = layout.width
        dicts: Iterable[dict[str, float]]
        if n:
            dicts = map(layout.build, *(floats[k::n] for k in range(n)))
        else:  # Iter(train) lines without a single `key: value`
            dicts = (layout.build() for _ in its)
        rec_rank = self.file_rank if rank is None else rank
        linenos = [w[0] for w in where]
        texts = [w[1] for w in where]
        stamps = map(self.stamps.parse, [t[:19] for t in texts])
        self.records.extend(map(Record, its, dicts, repeat(rec_rank), stamps, repeat(self.file), linenos, texts))

    def feed(self, text: str, rank: int | None, lineno: int) -> bool:
        if text.startswith("{"):
            return self._feed_json(text, rank, lineno)
        pos = text.find("(train)")
        if pos < 0:
            return False
        m = _RECORD.search(text, max(0, pos - 6))
        if not m:
            self.bad(lineno, text, "unreadable mmengine train line")
            return False
        ep, i, n = m.group(2), int(m.group(3)), int(m.group(4))
        epoch = None
        if m.group(1) == "Epoch" and ep is not None:
            epoch = int(ep)
            i = (epoch - 1) * n + i
        pairs = _PAIR.findall(m.group(5))
        if m.group(1) == "Iter":
            keys = tuple(k for k, _ in pairs)
            if self._layout is None or self._layout.keys != keys:
                self._layout = _Layout(keys)
        try:
            metrics = {k: float(v) for k, v in pairs if k not in _SKIP}
        except ValueError:
            try:
                metrics = {k: parse_number(v) for k, v in pairs if k not in _SKIP}
            except ValueError:
                self.bad(lineno, text, "unreadable number")
                return False
        t = metrics.get("time")
        if t is not None:
            metrics["step_time_s"] = t
        self.emit(i, metrics, rank, lineno, text, self.stamps.parse(text[:19]), epoch)
        return True

    def _feed_json(self, text: str, rank: int | None, lineno: int) -> bool:
        try:
            d = parse_json(text)
        except ValueError:
            self.bad(lineno, text, "unreadable JSON")
            return False
        if not isinstance(d, dict):
            self.bad(lineno, text, "JSON is not an object")
            return False
        if "iter" not in d:
            return False  # a validation record
        iteration = json_step(d["iter"])
        if iteration is None:
            self.bad(lineno, text, "iter is not a whole number below 10^18")
            return False
        metrics = json_metrics(d, _JSON_KEYS)
        if "time" in metrics:
            metrics["step_time_s"] = metrics["time"]
        epoch = json_number(d.get("epoch"))
        self.emit(iteration, metrics, rank, lineno, text, None,
                  int(epoch) if epoch is not None and math.isfinite(epoch) else None)
        return True
