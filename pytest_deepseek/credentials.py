"""The API key as a value that never shows itself, and redaction of text that may echo it.

`ApiKey` prints as `***` (repr, str, f-strings, tracebacks with locals) and refuses JSON; only
`reveal()` gives the key, at the one place a request header or a child's environment is built.
`redact` removes a key, and the forms a server or a library may echo it in, from any text.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json
import re
from collections.abc import Iterable

MASK = "***"


@functools.lru_cache(maxsize=1)
def _bearer() -> re.Pattern[str]:
    """A credential echoed after its scheme: `Bearer <token>` (8+ token characters); compiled on
    first use, off the plugin's import path."""
    return re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)[^\s\"'`,;<>\\]{8,}")


class ApiKey:
    """An API key that is printed as `***` and never serialised by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value or not value.isascii() or not value.isprintable() or any(ch.isspace() for ch in value):
            # Never the value itself in the message: it may be a key pasted with a stray newline.
            raise ValueError(f"an API key must be non-empty printable ASCII without spaces "
                             f"({len(value)} characters given)")
        self._value = value

    def reveal(self) -> str:
        """The key itself: for a request header or a child process's environment, nothing else."""
        return self._value

    def __repr__(self) -> str:
        return f"ApiKey('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((ApiKey, self._value))

    def __reduce__(self) -> tuple[type, tuple[str]]:  # deepcopy (dataclasses.asdict) keeps a working key
        return ApiKey, (self._value,)


KeyLike = ApiKey | str | None


def reveal(key: KeyLike) -> str | None:
    """The key as text (`ApiKey` or a plain string, as user code may pass), None for no key."""
    if key is None:
        return None
    return key.reveal() if isinstance(key, ApiKey) else (key or None)


def bearer_headers(key: KeyLike) -> dict[str, str]:
    """`{"authorization": "Bearer <key>"}`, or no header without a key."""
    value = reveal(key)
    return {"authorization": f"Bearer {value}"} if value else {}


def secret_forms(secret: str) -> list[str]:
    """The key and the forms it is echoed in: JSON-escaped, repr-escaped, base64 (plain and URL-safe,
    of the key and of `Bearer <key>`) and hex. Longest first, so a longer form is replaced whole."""
    forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], secret.encode().hex()}
    for raw in (secret.encode(), f"Bearer {secret}".encode()):
        forms.add(base64.b64encode(raw).decode().rstrip("="))
        forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def redact(text: str, secrets: Iterable[KeyLike] = ()) -> str:
    """`text` with every form of each secret, and any `Bearer <token>`, replaced by `***`."""
    for secret in secrets:
        value = reveal(secret)
        if value:
            for form in secret_forms(value):
                text = text.replace(form, MASK)
    return _bearer().sub(lambda m: f"{m.group(1)} {MASK}", text)


def redact_bytes(data: bytes, secrets: Iterable[KeyLike]) -> bytes:
    """`data` with every form of each secret replaced by `***` (for files a child process wrote)."""
    for secret in secrets:
        value = reveal(secret)
        if value:
            for form in secret_forms(value):
                data = data.replace(form.encode(), MASK.encode())
    return data


def authorization_token(header: str | None) -> str | None:
    """The credential of an `Authorization` header value (`Bearer abc` -> `abc`)."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or scheme or None
