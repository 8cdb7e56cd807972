"""Answer-key content: the simulator answers dataset questions with an exactly known score.

Each key entry (JSON lines) names a dataset item: `{"dataset", "id", "match": [strings the prompt
contains], "answer", "wrong", "format"}`. An incoming prompt is matched to the item whose `match`
strings all occur in it (the latest-placed one wins, so few-shot examples earlier in a prompt do not
capture it). Per dataset, exactly round(accuracy × items) items are answered right; which ones is
fixed by a hash of the seed and the item id, so a run's expected score is exact and repeatable.

Options (URL `content_<name>=...`, all strings):
- `key`: the key file (default: the bundled datasets' key)
- `accuracy`: `0.8`, or per dataset `cluewsc-dev=0.5,mmlu=0.75` (`*=` for the rest); default 1
- `reasoning`: `none` | `think-pair` (`<think>…</think>answer`) | `lone-closing-tag`
  (`…</think>answer`, as R1's template pre-fills `<think>`) | `reasoning_content`
- `fail`: comma-separated item ids answered with HTTP `fail_status` (default 500)
- `seed`: which items are right (default 0)
The reasoning quotes the wrong answer in each scorer's format, so a scorer that reads the thinking
scores it wrong.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..accuracy.bundled import ANSWER_KEY
from .content import Generation

STYLES = ("none", "think-pair", "lone-closing-tag", "reasoning_content")
FORMATS = {
    "choice_zh": "答案：{}",
    "choice_en": "ANSWER: {}",
    "boxed": "The answer is $\\boxed{{{}}}$.",
    "plain": "{}",
}
UNMATCHED = "This question is not in the answer key."
_PIECE = re.compile(r"</?think>|\s*[A-Za-z0-9]+|\s*\S|\s+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class KeyItem:
    """One answer-key entry."""

    dataset: str
    id: str
    match: tuple[str, ...]
    answer: str
    wrong: str
    format: str


def load_key(path: Path) -> list[KeyItem]:
    """Entries of a key file; a broken line names the file and line."""
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row: dict[str, Any] = json.loads(line)
            match = row["match"] if isinstance(row["match"], list) else [row["match"]]
            item = KeyItem(str(row["dataset"]), str(row["id"]), tuple(_norm(m) for m in match),
                           str(row["answer"]), str(row["wrong"]), str(row.get("format", "plain")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{line_no}: bad answer-key entry: {exc}") from exc
        if item.format not in FORMATS:
            raise ValueError(f"{path}:{line_no}: unknown format {item.format!r}; known: {', '.join(FORMATS)}")
        items.append(item)
    return items


def parse_accuracy(text: str) -> dict[str, float]:
    """`0.8` -> {"*": 0.8}; `a=0.5,b=1` -> {"a": 0.5, "b": 1.0}."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.rpartition("=")
        acc = float(value)
        if not 0.0 <= acc <= 1.0:
            raise ValueError(f"answer-key accuracy {part!r} is not within 0..1")
        out[name or "*"] = acc
    return out


def pieces(text: str) -> list[str]:
    """`text` split into token-sized pieces (words with their leading space, single characters, tags)."""
    return _PIECE.findall(text)


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _rank(seed: str, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


class AnswerKeyContent:
    """A content source answering the key's questions right or wrong as configured."""

    def __init__(self, key: str | None = None, accuracy: str = "1", reasoning: str = "none",
                 fail: str = "", fail_status: str = "500", seed: str = "0") -> None:
        if reasoning not in STYLES:
            raise ValueError(f"answer-key reasoning {reasoning!r}; known: {', '.join(STYLES)}")
        self.items = load_key(Path(key) if key else ANSWER_KEY)
        self.reasoning = reasoning
        self.accuracy = parse_accuracy(accuracy)
        self.failing = frozenset(filter(None, (f.strip() for f in fail.split(","))))
        self.fail_status = int(fail_status)
        unknown = self.failing - {i.id for i in self.items}
        if unknown:
            raise ValueError(f"answer-key fail ids not in the key: {sorted(unknown)}")
        self.right = self._choose_right(seed)

    def _choose_right(self, seed: str) -> frozenset[str]:
        by_dataset: dict[str, list[KeyItem]] = {}
        for item in self.items:
            by_dataset.setdefault(item.dataset, []).append(item)
        right: set[str] = set()
        for dataset, items in by_dataset.items():
            acc = self.accuracy.get(dataset, self.accuracy.get("*", 1.0))
            k = round(acc * len(items))
            right.update(i.id for i in sorted(items, key=lambda i: _rank(seed, i.id))[:k])
        return frozenset(right)

    def expected(self) -> dict[str, dict[str, Any]]:
        """Per dataset: items, right answers, failing ids, and right answers among items that succeed."""
        out: dict[str, dict[str, Any]] = {}
        for item in self.items:
            d = out.setdefault(item.dataset, {"n": 0, "right": 0, "failed": [], "right_not_failed": 0})
            d["n"] += 1
            d["right"] += item.id in self.right
            if item.id in self.failing:
                d["failed"].append(item.id)
            elif item.id in self.right:
                d["right_not_failed"] += 1
        return out

    def match(self, text: str) -> KeyItem | None:
        """The key item asked in `text`, or None."""
        text = _norm(text)
        best: tuple[int, int] | None = None
        found = None
        for item in self.items:
            if all(m in text for m in item.match):
                score = (text.rfind(item.match[0]), sum(len(m) for m in item.match))
                if best is None or score > best:
                    best, found = score, item
        return found

    def generate(self, *, prompt_text: str, messages: list[dict] | None, max_tokens: int,
                 min_tokens: int, ignore_eos: bool, rng: random.Random) -> Generation:
        """The formatted answer (right or wrong as planned), its reasoning, or the planned failure."""
        item = self.match(_question_text(prompt_text, messages))
        if item is None:
            return Generation(answer=pieces(UNMATCHED))
        if item.id in self.failing:
            return Generation(answer=[], fail_status=self.fail_status)
        template = FORMATS[item.format]
        answer = pieces(template.format(item.answer if item.id in self.right else item.wrong))
        thinking = pieces(
            f"Let me think step by step. A first guess: {template.format(item.wrong)} "
            f"({FORMATS['choice_en'].format(item.wrong)}). Checking again."
        )
        reasoning: list[str] = []
        if self.reasoning == "think-pair":
            answer = ["<think>", *thinking, "</think>", *answer]
        elif self.reasoning == "lone-closing-tag":
            answer = [*thinking, "</think>", *answer]
        elif self.reasoning == "reasoning_content":
            reasoning = thinking
        want = max_tokens if ignore_eos else min_tokens
        answer += ["\n"] * max(0, want - len(answer) - len(reasoning))
        return Generation(answer=answer, reasoning=reasoning)


def _question_text(prompt_text: str, messages: list[dict] | None) -> str:
    """The last user turn of a chat (few-shot turns come before it), else the raw prompt."""
    for message in reversed(messages or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return prompt_text
