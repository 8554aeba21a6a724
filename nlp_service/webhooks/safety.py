"""Webhook target checks (SSRF): only http(s), and only public addresses unless settings allow more.

Checked when a subscription is created or updated and again at send time, where the sender connects to the
very address that was checked (so a DNS answer changing between check and connect cannot reach a private
host).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]  # (hostname, port) -> addresses; blocking; OSError if none


class UnsafeTarget(ValueError):
    """The URL is not an allowed webhook target."""


@dataclass(frozen=True)
class TargetPolicy:
    """Which address classes are allowed besides public unicast ones."""

    allow_private: bool = False
    allow_loopback: bool = False
    resolver: Resolver | None = None  # default: the system's (``system_resolver``); tests inject their own

    def resolve(self, hostname: str, port: int) -> list[IPAddress]:
        return (self.resolver or system_resolver)(hostname, port)


@dataclass(frozen=True)
class ResolvedTarget:
    url: SplitResult
    hostname: str
    port: int
    address: IPAddress


def parse_url(url: str) -> tuple[SplitResult, str, int]:
    """Split and check the URL's shape: http(s), a host, no credentials. Returns (parts, hostname, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"invalid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("credentials in the URL are not allowed")
    return parts, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def address_problem(address: IPAddress, policy: TargetPolicy) -> str | None:
    """Why ``address`` is refused under ``policy``, or None if it is allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return None if policy.allow_loopback else "loopback"
    if address.is_link_local:
        return None if policy.allow_private else "link-local"
    if address.is_private or not address.is_global:
        if address.is_reserved:
            return "reserved"
        return None if policy.allow_private else "private"
    if address.is_reserved:
        return "reserved"
    return None


def _literal(hostname: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return None


def _check_all(hostname: str, addresses: list[IPAddress], policy: TargetPolicy) -> IPAddress:
    if not addresses:
        raise UnsafeTarget(f"{hostname!r} does not resolve")
    for address in addresses:
        problem = address_problem(address, policy)
        if problem:
            raise UnsafeTarget(f"{hostname!r} resolves to a {problem} address, which is not allowed")
    return addresses[0]


def system_resolver(hostname: str, port: int) -> list[IPAddress]:
    """Every address ``getaddrinfo`` gives for ``hostname`` (blocking), without duplicates."""
    seen: dict[IPAddress, None] = {}
    for info in socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM):
        seen.setdefault(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]), None)
    return list(seen)


def resolve_target(url: str, policy: TargetPolicy) -> ResolvedTarget:
    """Check ``url`` and every address its host resolves to (blocking DNS); raise :class:`UnsafeTarget`."""
    parts, hostname, port = parse_url(url)
    literal = _literal(hostname)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = policy.resolve(hostname, port)
        except OSError as exc:
            raise UnsafeTarget(f"cannot resolve {hostname!r}: {exc}") from exc
    return ResolvedTarget(parts, hostname, port, _check_all(hostname, addresses, policy))


async def resolve_target_async(url: str, policy: TargetPolicy) -> ResolvedTarget:
    """:func:`resolve_target` on the event loop's resolver."""
    parts, hostname, port = parse_url(url)
    literal = _literal(hostname)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await asyncio.get_running_loop().run_in_executor(None, policy.resolve, hostname, port)
        except OSError as exc:
            raise UnsafeTarget(f"cannot resolve {hostname!r}: {exc}") from exc
    return ResolvedTarget(parts, hostname, port, _check_all(hostname, addresses, policy))


def pinned_url(target: ResolvedTarget) -> str:
    """The URL with its host replaced by the checked address (sent there, with the name as Host and SNI)."""
    host = str(target.address)
    if isinstance(target.address, ipaddress.IPv6Address):
        host = f"[{host}]"
    netloc = f"{host}:{target.port}"
    return target.url._replace(netloc=netloc).geturl()


def host_header(target: ResolvedTarget) -> str:
    """The Host header for the original URL."""
    default = 443 if target.url.scheme == "https" else 80
    name = f"[{target.hostname}]" if ":" in target.hostname else target.hostname
    return name if target.port == default else f"{name}:{target.port}"
