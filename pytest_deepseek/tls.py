"""How HTTPS endpoints are verified: the system's CAs, a CA bundle given by the user, or (only when
asked with --deepseek-insecure) not at all.

One `TlsPolicy` serves every HTTP client of a run: the measuring client, the small endpoint calls,
and the evaluation backends' child processes (through their environment or their own option).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl


@dataclass(frozen=True)
class TlsPolicy:
    """Verify server certificates against `ca_bundle` (a PEM file or an OpenSSL hashed folder) or,
    without one, the system's CAs; `verify=False` checks nothing (the header says so)."""

    ca_bundle: str | None = None
    verify: bool = True

    def ssl_context(self) -> "ssl.SSLContext":
        """The context an httpx or aiohttp client verifies with (built once per policy)."""
        return _context(self.ca_bundle, self.verify)

    def child_env(self) -> dict[str, str]:
        """Environment that points a child process's OpenSSL, httpx and requests at the CA bundle
        (empty without one: the child keeps its own defaults)."""
        if not self.verify or not self.ca_bundle:
            return {}
        name = "SSL_CERT_DIR" if Path(self.ca_bundle).is_dir() else "SSL_CERT_FILE"
        return {name: self.ca_bundle, "REQUESTS_CA_BUNDLE": self.ca_bundle}

    def describe(self) -> str:
        """One phrase for the header and the results."""
        if not self.verify:
            return "certificate verification OFF (--deepseek-insecure): the endpoint's identity is not checked"
        return f"verified against {self.ca_bundle}" if self.ca_bundle else "verified against the system CAs"


SYSTEM = TlsPolicy()


@functools.lru_cache(maxsize=8)
def _context(ca_bundle: str | None, verify: bool) -> "ssl.SSLContext":
    import ssl

    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_bundle is None:
        context = ssl.create_default_context()  # the system store (and $SSL_CERT_FILE / $SSL_CERT_DIR)
        if not context.cert_store_stats()["x509_ca"]:
            _add_certifi(context)  # a slim image without a CA file: httpx's own bundle rather than none
        return context
    if Path(ca_bundle).is_dir():
        return ssl.create_default_context(capath=ca_bundle)
    return ssl.create_default_context(cafile=ca_bundle)


def _add_certifi(context: "ssl.SSLContext") -> None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on it
        return
    context.load_verify_locations(cafile=certifi.where())
