"""Outbound HTTP guarded against SSRF: one place for every call to a URL a user supplied.

``check_url`` resolves the host and refuses loopback, private, link-local,
multicast, reserved and cloud-metadata addresses unless private networks are
explicitly allowed. ``guarded_request`` then connects to the address it checked
(pinned: no second DNS lookup an attacker could rebind), never follows
redirects, and applies a timeout. A caller that pools connections passes ``client_for``: it is
given each request's freshly checked destination and returns the client for exactly that one, so a
kept-alive connection is only ever reused for the address the guard has just approved.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UnsafeDestination(ValueError):
    """The URL is malformed or resolves to an address outbound calls may not reach."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    address: str  # the resolved IP that the request is pinned to


def _is_forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> bool:
    if ip in METADATA_ADDRESSES:
        return True  # cloud metadata is never allowed, not even with private networks on
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return _is_forbidden(ip.ipv4_mapped, allow_private)
    if ip.is_multicast or ip.is_unspecified or (ip.is_reserved and not ip.is_private):
        return True
    if allow_private:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or not ip.is_global


def check_url(url: str, *, allow_private: bool) -> Destination:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"malformed URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeDestination("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeDestination("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeDestination("credentials in URLs are not allowed")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeDestination(f"cannot resolve {parts.hostname}") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeDestination(f"{parts.hostname} resolves to nothing")
    # Every address must be allowed: a mixed answer is how DNS rebinding sneaks in.
    for ip in addresses:
        if _is_forbidden(ip, allow_private):
            raise UnsafeDestination(f"{parts.hostname} resolves to a forbidden address ({ip})")
    return Destination(parts.scheme, parts.hostname, port, str(addresses[0]))


def guarded_request(
    method: str,
    url: str,
    *,
    allow_private: bool,
    timeout: float,
    client: httpx.Client | None = None,
    client_for: Callable[[Destination], httpx.Client] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request to URL, pinned to the checked address, without following redirects.

    The URL is checked (resolved) on every call; ``client_for(destination)`` picks a client for it.
    """
    dest = check_url(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = f"[{dest.address}]" if ":" in dest.address else dest.address
    pinned = urlunsplit((parts.scheme, f"{host}:{dest.port}", parts.path or "/", parts.query, ""))
    headers = dict(kwargs.pop("headers", None) or {})
    default_port = 443 if parts.scheme == "https" else 80
    headers["Host"] = dest.host if dest.port == default_port else f"{dest.host}:{dest.port}"
    extensions = {"sni_hostname": dest.host} if parts.scheme == "https" else {}
    owns_client = client is None and client_for is None
    http = client or (client_for(dest) if client_for else httpx.Client(timeout=timeout, follow_redirects=False))
    try:
        return http.request(method, pinned, headers=headers, extensions=extensions, timeout=timeout, follow_redirects=False, **kwargs)
    finally:
        if owns_client:
            http.close()
