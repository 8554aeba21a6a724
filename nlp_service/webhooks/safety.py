"""Webhook target checks (SSRF): only http(s), allowed ports, and only public addresses unless settings allow
more; link-local and cloud metadata addresses never, whatever the settings.

Checked when a subscription is created or updated and again at send time, where the sender connects to the
very address that was checked (so a DNS answer changing between check and connect cannot reach a private
host). IPv6 addresses that carry an IPv4 one (mapped, 6to4, Teredo, NAT64) are judged by that one too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from nlp_service.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]  # (hostname, port) -> addresses; blocking; OSError if none


PortRanges = tuple[tuple[int, int], ...]
DEFAULT_PORTS: PortRanges = ((80, 80), (443, 443), (1024, 65535))

# Never a webhook target, whatever the settings: link-local (169.254/16 holds the AWS, GCP, Azure, OpenStack
# and ECS metadata services; fe80::/10) and other clouds' metadata addresses.
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32", "192.0.0.192/32")
)
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class UnsafeTarget(ValueError):
    """The URL is not an allowed webhook target."""


def parse_ports(spec: str) -> PortRanges:
    """``"80,443,1024-65535"`` -> ((80, 80), (443, 443), (1024, 65535)); ValueError on a bad item."""
    ranges = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        low, _, high = item.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"not a port or port range: {item!r}") from None
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"not a port range within 1-65535: {item!r}")
        ranges.append((first, last))
    if not ranges:
        raise ValueError("no port allowed")
    return tuple(ranges)


@dataclass(frozen=True)
class TargetPolicy:
    """Which address classes and ports are allowed besides public unicast addresses, and how names resolve."""

    allow_private: bool = False
    allow_loopback: bool = False
    ports: PortRanges = DEFAULT_PORTS
    resolver: Resolver | None = None  # default: the system's (``system_resolver``); tests inject their own

    @classmethod
    def from_settings(cls, settings: Settings) -> TargetPolicy:
        return cls(
            allow_private=settings.webhook_allow_private,
            allow_loopback=settings.webhook_allow_loopback,
            ports=parse_ports(settings.webhook_allowed_ports),
        )

    def resolve(self, hostname: str, port: int) -> list[IPAddress]:
        return (self.resolver or system_resolver)(hostname, port)

    def port_allowed(self, port: int) -> bool:
        return any(first <= port <= last for first, last in self.ports)


@dataclass(frozen=True)
class ResolvedTarget:
    url: SplitResult
    hostname: str
    port: int
    address: IPAddress


def parse_url(url: str, policy: TargetPolicy) -> tuple[SplitResult, str, int]:
    """Check the URL: http(s), a host, no credentials, an allowed port. Returns (parts, hostname, port)."""
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
    port = port or (443 if parts.scheme == "https" else 80)
    if not policy.port_allowed(port):
        raise UnsafeTarget(f"port {port} is not allowed (NLP_WEBHOOK_ALLOWED_PORTS)")
    return parts, parts.hostname, port


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64), or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress, policy: TargetPolicy) -> str | None:
    """Why ``address`` is refused under ``policy``, or None if it is allowed."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner, policy)
            if problem:
                return f"{problem} (embedded {inner})"
            if address.ipv4_mapped is not None:
                return None  # it is that IPv4 address
    if any(address in net for net in METADATA_NETWORKS):
        return "link-local or cloud metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return None if policy.allow_loopback else "loopback"
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
    parts, hostname, port = parse_url(url, policy)
    literal = _literal(hostname)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = policy.resolve(hostname, port)
        except OSError as exc:
            raise UnsafeTarget(f"cannot resolve {hostname!r}: {exc}") from exc
    return ResolvedTarget(parts, hostname, port, _check_all(hostname, addresses, policy))


async def resolve_target_async(url: str, policy: TargetPolicy, executor: Executor | None) -> ResolvedTarget:
    """:func:`resolve_target` with the lookup on ``executor``'s threads (cancel it with a timeout around)."""
    parts, hostname, port = parse_url(url, policy)
    literal = _literal(hostname)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            lookup = asyncio.get_running_loop().run_in_executor(executor, policy.resolve, hostname, port)
            addresses = await lookup
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
