"""The client's own address behind reverse proxies that this deployment trusts.

Behind a proxy every request arrives from the proxy, so rate limits and the audit trail would see one address
for everyone. ``X-Forwarded-For`` names the real client, but any client can send the header too. It is read
here only when the request came from a trusted proxy (``TRUSTED_PROXIES``), and then from the right: each
trusted proxy appends the address it was reached from, so the first address from the right that is not a
trusted proxy is the client. Whatever a client wrote further left is never believed. With no trusted proxies
configured the header is ignored altogether.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """The address to treat as the client's, from the connection's peer and the X-Forwarded-For header."""
    peer_address = _address(peer or "")
    if not trusted or peer_address is None or not _is_trusted(peer_address, trusted):
        return peer
    client = peer
    for hop in reversed((forwarded_for or "").split(",")):
        address = _address(hop)
        if address is None:
            # A hop no proxy of ours would write: stop at the last address a trusted proxy vouched for.
            break
        client = str(address)
        if not _is_trusted(address, trusted):
            break
    return client


def _is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: tuple[Network, ...]) -> bool:
    return any(address in network for network in trusted)


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client's address; the proxy's is kept as ``referral.proxy``."""

    def __init__(self, app: Any, trusted: Iterable[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        if self.trusted:
            peer = environ.get("REMOTE_ADDR")
            client = client_address(peer, environ.get("HTTP_X_FORWARDED_FOR"), self.trusted)
            if client != peer:
                environ["referral.proxy"] = peer
                environ["REMOTE_ADDR"] = client
        result: Iterator[bytes] = self.app(environ, start_response)
        return result
