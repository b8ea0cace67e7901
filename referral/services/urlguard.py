"""Which URLs the server may call back: the guard against server-side request forgery.

A webhook URL is chosen by a customer but fetched from inside our network, so without this check it
could reach the cloud metadata service, the database or an admin port on loopback. The rule is checked
when a webhook is registered and again before every send, because a name can be re-pointed in DNS
after registration; the sender then connects to the very address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[Any]]


class UnsafeUrl(ValueError):
    """The URL breaks a rule; the message names the rule and never the resolved address."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def address_rule(ip: IPAddress) -> str | None:
    """The name of the rule that forbids calling ``ip``, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 form that carries an IPv4 address reaches that IPv4 address.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return address_rule(embedded)
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        # fec0::/10, deprecated but still routed inside some networks
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        # e.g. 100.64.0.0/10 (carrier-grade NAT): neither private nor reachable from the internet
        ("not globally routable", not ip.is_global),
    )
    for name, applies in checks:
        if applies:
            return name
    return None


def _split(url: str) -> tuple[str, str, int, str]:
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeUrl("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("The URL is not valid.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("The URL must use http or https.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrl("The URL must not contain credentials (user:password@); authenticate with the signature.")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("The URL must name a host.")
    if port == 0:
        raise UnsafeUrl("The URL is not valid.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80), path


def _resolve(host: str, port: int, resolver: Resolver) -> tuple[str, ...]:
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl("The host does not resolve.") from None
    # getaddrinfo repeats addresses per socket type and protocol; keep the first of each.
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeUrl("The host does not resolve.")
    return addresses


def check_url(url: str, *, allow_private: bool, resolve: bool = True,
              resolver: Resolver | None = None) -> Target:
    """Check ``url`` and return where to connect. Every address the host resolves to must be public
    unless ``allow_private``; with ``resolve=False`` only the URL's form is checked (addresses empty).
    The resolver is ``socket.getaddrinfo`` as it is at call time (so a patched one, e.g. by gevent, is
    the one used)."""
    scheme, host, port, path = _split(url)
    if not resolve and allow_private:
        return Target(scheme, host, port, path, ())
    addresses = _resolve(host, port, resolver or socket.getaddrinfo)
    if not allow_private:
        for address in addresses:
            # A scope id (fe80::1%eth0) is not part of the address itself.
            rule = address_rule(ipaddress.ip_address(address.split("%", 1)[0]))
            if rule is not None:
                raise UnsafeUrl(
                    f"The host resolves to a {rule} address; webhooks must point to a public address "
                    "(set WEBHOOK_ALLOW_PRIVATE=1 only for development)."
                )
    return Target(scheme, host, port, path, addresses)
