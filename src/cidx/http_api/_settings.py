"""Where `cidx serve` answers HTTP and with which token, checked before anything is opened.

The address is resolved once, and exposure is judged by the address that
gets bound. Every request needs a bearer token, on loopback too, since any
local user can reach loopback: it comes from `--token` or $CIDX_HTTP_TOKEN,
or else a random one is made for the run and handed to local clients in the
owner-only `serve.json`, as Jupyter does. Listening beyond loopback takes a
token of the user's own: remote clients cannot read `serve.json`, and a
generated token changes with every start.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from cidx.errors import UsageError

TOKEN_ENV = "CIDX_HTTP_TOKEN"
# A client that has not sent its whole request after this long is dropped.
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Listen:
    """A resolved address to listen on."""

    text: str  # as the user wrote it, for messages
    family: socket.AddressFamily
    sockaddr: tuple[Any, ...]  # what bind() takes: (host, port) or (host, port, flow, scope)
    loopback: bool


@dataclass(frozen=True)
class HttpSettings:
    listen: Listen
    token: str
    # True when the token was made for this run (and so is shown to the owner).
    generated: bool
    request_timeout: float = REQUEST_TIMEOUT_SECONDS


def parse_address(text: str) -> tuple[str, int]:
    """`"127.0.0.1:8765"`, `":8765"` (loopback) or `"[::1]:8765"` → (host, port)."""
    example = "Use HOST:PORT, e.g. 127.0.0.1:8765, :8765 or [::1]:8765 (port 0 picks a free one)."
    value = text.strip()
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or not rest.startswith(":") or not host:
            raise UsageError(f"Cannot read the address {text!r}. {example}")
        port_text = rest[1:]
    else:
        host, colon, port_text = value.rpartition(":")
        if not colon:
            raise UsageError(f"The address {text!r} has no port. {example}")
        if ":" in host:
            raise UsageError(
                f"Cannot read the address {text!r}: put an IPv6 address in brackets, "
                "e.g. [::1]:8765."
            )
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or int(port_text) > 65535:
        raise UsageError(
            f"The port in {text!r} must be a number from 0 to 65535, not {port_text!r}. {example}"
        )
    return host or "127.0.0.1", int(port_text)


def _is_loopback(host: str) -> bool:
    ip = ipaddress.ip_address(host)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def resolve_address(text: str) -> Listen:
    host, port = parse_address(text)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UsageError(
            f"Cannot resolve the host {host!r} of the address {text!r} ({exc.strerror}). "
            "Use an IP address, e.g. 127.0.0.1:8765."
        ) from None
    # Bind the first address the resolver prefers, and judge exposure by that
    # same address: what is checked is what gets bound.
    family, _, _, _, sockaddr = infos[0]
    return Listen(
        text=text,
        family=family,
        sockaddr=tuple(sockaddr),
        loopback=_is_loopback(str(sockaddr[0])),
    )


def resolve_token(flag: str | None) -> str | None:
    """The token from `--token`, else from $CIDX_HTTP_TOKEN (empty there means unset)."""
    token = flag if flag is not None else (os.environ.get(TOKEN_ENV) or None)
    if token is None:
        return None
    source = "--token" if flag is not None else f"${TOKEN_ENV}"
    if not token or any(ch.isspace() or not ch.isprintable() for ch in token):
        raise UsageError(
            f"The token in {source} must be non-empty and hold no spaces or control "
            "characters, since clients send it in an `Authorization: Bearer` header."
        )
    return token


def http_settings(address: str, token: str | None = None) -> HttpSettings:
    """Check `--http` and the token before anything is opened; UsageError if unsafe."""
    listen = resolve_address(address)
    given = resolve_token(token)
    if given is not None:
        return HttpSettings(listen=listen, token=given, generated=False)
    if not listen.loopback:
        raise UsageError(
            f"Refusing to serve the index on {address!r}, which other machines can reach, "
            f"without a token. Pass --token TOKEN (or set ${TOKEN_ENV}) so every request "
            "must send `Authorization: Bearer TOKEN`, or listen on loopback, "
            "e.g. --http 127.0.0.1:8765, where a token is made for each run."
        )
    # 256 bits, URL-safe: it goes into headers, URLs and shell commands as is.
    return HttpSettings(listen=listen, token=secrets.token_urlsafe(32), generated=True)
