"""The client's address, decided in one place for the rate limiter, incidents/audit and the request log.

``X-Forwarded-For`` is believed only when the immediate peer (``REMOTE_ADDR``)
is one of the proxies in ``AION_TRUSTED_PROXIES`` (comma-separated CIDRs,
default empty: trust none). Then the header is walked right to left, skipping
trusted proxies; the first address that is not one is the client. Entries left
of it were written by the client itself and are ignored, so a forged chain
cannot pick the bucket a request is counted in. The web server must not rewrite
the peer itself (no ``uvicorn --proxy-headers``; see docs/security.md).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def parse_networks(spec: str, name: str = "AION_TRUSTED_PROXIES") -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` as networks (a bare address is a /32 or /128); a bad entry names NAME."""
    networks = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name} must be comma-separated CIDRs; {entry!r} is not one ({exc})") from exc
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def resolve(remote_addr: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client address for a peer REMOTE_ADDR that sent X-Forwarded-For FORWARDED_FOR."""
    peer = _address(remote_addr or "")
    if peer is None:
        return str(remote_addr or "unknown")
    if not any(peer in network for network in trusted):
        return str(peer)
    nearest = peer  # the closest hop known to be honest: a trusted proxy wrote everything right of it
    for entry in reversed((forwarded_for or "").split(",")):
        hop = _address(entry)
        if hop is None:
            return str(nearest)  # a trusted proxy never writes garbage: stop at the last hop we can believe
        if not any(hop in network for network in trusted):
            return str(hop)
        nearest = hop
    return str(nearest)  # every hop is a trusted proxy (an internal caller)


def trusted_proxies() -> tuple[Network, ...]:
    return parse_networks(settings.AION_TRUSTED_PROXIES)


def client_ip(request: Any) -> str:
    """The client address of REQUEST (a Django or DRF request), computed once and kept on the Django request."""
    django_request = getattr(request, "_request", request)
    known = getattr(django_request, "aion_client_ip", None)
    if known is not None:
        return str(known)
    meta = django_request.META
    address = resolve(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), trusted_proxies())
    try:
        django_request.aion_client_ip = address
    except AttributeError:  # pragma: no cover - a read-only request stand-in
        pass
    return address
