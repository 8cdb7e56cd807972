"""Lines in, one TrainingLog out: detection, per-file parsing, rank choice, de-duplication.

Used both for whole files (``load_records``) and for files being written (the follower feeds
complete lines as they arrive and takes snapshots).
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from . import dialects
from .dialects.base import Parser
from .events import crash_event
from .normalise import normalise_line
from .records import Event, Record, TrainingLog, TrainingLogError

DETECT_LINES = 5000
LOSS_KEYS = ("loss",)


class Assembler:
    """Accumulates lines from several files and builds TrainingLog snapshots."""

    def __init__(self, dialect: str = "auto", rank: int | None = None) -> None:
        self.requested = dialects.canonical(dialect)
        self.dialect: str | None = None if self.requested == "auto" else self.requested
        self.rank = rank
        self.parsers: dict[str, Parser] = {}
        self.events: list[Event] = []
        self.files: list[str] = []
        self.total_lines = 0
        self._pending: dict[str, list[tuple[str, int | None, int]]] = {}
        self._first_lines: list[str] = []
        self._roles: dict[str, str] = {}
        self._file_rank: dict[str, int | None] = {}

    def add_file(self, path: str, role: str = "records", rank: int | None = None) -> None:
        """Register a source before feeding its lines."""
        if path not in self._roles:
            self.files.append(path)
            self._roles[path] = role
            self._file_rank[path] = rank

    def set_role(self, path: str, role: str) -> None:
        """Change a registered file's role; a file demoted to "events" gives up its records
        (mmengine's vis_data JSON appears after the text log and is preferred to it)."""
        if path in self._roles and self._roles[path] != role:
            self._roles[path] = role
            self.parsers.pop(path, None)

    def feed_whole(self, path: str, text: str) -> bool:
        """Give a whole-file format (trainer_state.json) its file at once; False if not one."""
        if self.dialect not in (None, "hf") or self._roles.get(path) != "records":
            return False
        if '"log_history"' not in text[:200_000]:
            return False
        self.dialect = "hf"
        parser = self._parser(path)
        return parser.feed_whole(text)

    def _parser(self, path: str) -> Parser:
        p = self.parsers.get(path)
        if p is None:
            assert self.dialect is not None
            p = dialects.parser_for(self.dialect)
            p.start_file(path, self._file_rank.get(path))
            self.parsers[path] = p
        return p

    def feed_lines(self, path: str, lines: Iterable[str], first_lineno: int = 1) -> None:
        """Parse complete lines of ``path`` (numbered from ``first_lineno``)."""
        role = self._roles.get(path, "records")
        if role == "events":
            self._events_only(path, lines, first_lineno)
            return
        if self.dialect is None:
            buf = self._pending.setdefault(path, [])
            for i, raw in enumerate(lines, first_lineno):
                text, r = normalise_line(raw)
                buf.append((text, r, i))
                if len(self._first_lines) < 20 and text.strip():
                    self._first_lines.append(text[:200])
            self._try_detect()
            return
        self._feed(path, lines, first_lineno)

    def detect_from(self, lines: list[str]) -> None:
        """Recognise the dialect from the first lines of a file, if not known yet."""
        if self.dialect is not None:
            return
        sample = [normalise_line(raw)[0] for raw in lines[:DETECT_LINES]]
        for text in sample:
            if len(self._first_lines) < 20 and text.strip():
                self._first_lines.append(text[:200])
        found = dialects.detect(sample)
        if found is not None:
            self.dialect = found

    def feed_text(self, path: str, text: str, first_lineno: int = 1) -> None:
        """Parse a block of complete lines; clean text goes through a dialect's bulk path."""
        role = self._roles.get(path, "records")
        if role == "records" and self.dialect is not None:
            parser = self._parser(path)
            block = getattr(parser, "feed_block", None)
            clean = "\x1b" not in text and "\r" not in text and "\n[" not in text and not text.startswith("[")
            if block is not None and clean:
                events = self.events
                rank = self._file_rank.get(path)

                def other(line: str, lineno: int) -> None:
                    ev = crash_event(line, path, lineno, rank)
                    if ev:
                        events.append(ev)

                block(text, first_lineno, None, other)
                self.total_lines += text.count("\n") + (0 if text.endswith("\n") or not text else 1)
                return
        self.feed_lines(path, text.splitlines(), first_lineno)

    def _try_detect(self) -> None:
        sample = [t for buf in self._pending.values() for t, _, _ in buf[:DETECT_LINES]]
        found = dialects.detect(sample)
        if found is None:
            return
        self.dialect = found
        pending, self._pending = self._pending, {}
        for path, buf in pending.items():
            parser = self._parser(path)
            for text, r, i in buf:
                self.total_lines += 1
                if not parser.feed(text, r, i):
                    ev = crash_event(text, path, i, r)
                    if ev:
                        self.events.append(ev)

    def undetected_lines(self) -> int:
        """How many lines wait for the dialect to be recognised."""
        return sum(len(b) for b in self._pending.values())

    def _feed(self, path: str, lines: Iterable[str], first_lineno: int) -> None:
        parser = self._parser(path)
        feed = parser.feed
        events = self.events
        n = 0
        for i, raw in enumerate(lines, first_lineno):
            n += 1
            if raw.startswith("[") or "\x1b" in raw or "\r" in raw:
                text, r = normalise_line(raw)
            else:
                text, r = raw, None
            if feed(text, r, i):
                continue
            ev = crash_event(text, path, i, r)
            if ev:
                events.append(ev)
        self.total_lines += n

    def _events_only(self, path: str, lines: Iterable[str], first_lineno: int) -> None:
        for i, raw in enumerate(lines, first_lineno):
            text, r = normalise_line(raw)
            ev = crash_event(text, path, i, r)
            if ev:
                self.events.append(ev)

    def detection_error(self) -> TrainingLogError:
        """The error for a log in no known dialect: what was tried and what was seen."""
        seen = "\n".join(f"    {line}" for line in self._first_lines[:10]) or "    (no non-empty lines)"
        tried = ", ".join(dialects.DIALECT_NAMES)
        return TrainingLogError(
            f"cannot recognise the training log format of {', '.join(self.files)}; dialects tried: "
            f"{tried}. First lines seen:\n{seen}\nSet `dialect:` in thresholds.yaml to override.")

    def snapshot(self, finishing: bool = False) -> TrainingLog:
        """The records so far: owner rank chosen, last record kept per iteration, sorted."""
        if self.dialect is None:
            return TrainingLog([], "undetected", None, list(self.files), total_lines=self.total_lines,
                               events=list(self.events))
        records: list[Record] = []
        corrupt, examples, warnings = 0, [], []
        info: dict = {}
        units: dict[str, str] = {}
        owner = "first"
        for path in self.files:
            p = self.parsers.get(path)
            if p is None:
                continue
            if finishing:
                p.finish()
            records.extend(p.records)
            corrupt += p.corrupt
            examples.extend(p.corrupt_examples)
            warnings.extend(p.warnings)
            for k, v in p.info.items():
                info.setdefault(k, v)
            units = dict(type(p).units)
            owner = type(p).owner
        ranks = sorted({r.rank for r in records if r.rank is not None})
        chosen = self._choose_rank(records, owner, warnings)
        if chosen is not None:
            records = [r for r in records if r.rank == chosen or (r.rank is None and not ranks)]
        its = [r.iteration for r in records]
        if all(map(int.__lt__, its, its[1:])):
            out = records  # already strictly increasing: the usual case
        else:
            by_iter: dict[int, Record] = {}
            for r in records:
                by_iter[r.iteration] = r
            repeated = len(records) - len(by_iter)
            if repeated:
                counts = Counter(its)
                first_rep = min(i for i, c in counts.items() if c > 1)
                warnings.append(f"{repeated} repeated iteration record(s) from iteration {first_rep} "
                                f"(resumed run?); kept the last record of each iteration")
            out = sorted(by_iter.values(), key=lambda r: r.iteration)
        post = getattr(dialects.parser_for(self.dialect), "postprocess", None)
        if post is not None:
            post(out)
        return TrainingLog(out, self.dialect, chosen, list(self.files), corrupt, examples[:5], warnings,
                           list(self.events), info, units, ranks, self.total_lines)

    def _choose_rank(self, records: list[Record], owner: str, warnings: list[str]) -> int | None:
        if self.rank is not None:
            return self.rank
        with_loss = {r.rank for r in records if r.rank is not None and any(k in r.metrics for k in LOSS_KEYS)}
        candidates = with_loss or {r.rank for r in records if r.rank is not None}
        if not candidates:
            return None
        chosen = max(candidates) if owner == "last" else min(candidates)
        if len(candidates) > 1:
            why = "the last rank owns the loss" if owner == "last" else "rank 0's loss is the one printed"
            warnings.append(f"ranks {sorted(candidates)} wrote records; kept rank {chosen} ({why}); "
                            "rank-local losses are never averaged")
        return chosen
