"""SSRF policy (ports, addresses embedding IPv4, cloud metadata) and DNS rebinding against real local servers.

Names are answered by an injected resolver function (``TargetPolicy.resolver``), never by the system's DNS:
it says one thing when the subscription is saved and another at send time, like a rebinding attacker.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from nlp_service.config import Settings
from nlp_service.errors import InvalidInput
from nlp_service.hardening.secretbox import SecretBox
from nlp_service.webhooks import service
from nlp_service.webhooks.safety import IPAddress, TargetPolicy
from nlp_service.webhooks.schemas import CreateWebhookRequest
from nlp_service.webhooks.sender import Sender, SendResult
from tests.webhooks.conftest import create_subscription
from tests.webhooks.receiver import LocalReceiver

PUBLIC = "93.184.216.34"


class Rebinder:
    """Answers ``first`` to the first lookup, ``then`` to every later one; records the lookups."""

    def __init__(self, first: str, then: str) -> None:
        self.first, self.then = ipaddress.ip_address(first), ipaddress.ip_address(then)
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, hostname: str, port: int) -> list[IPAddress]:
        self.lookups.append((hostname, port))
        return [self.first if len(self.lookups) == 1 else self.then]


@pytest.fixture
def silent_listener() -> Iterator[socket.socket]:
    """A loopback socket that listens but never accepts: any connection attempt waits in its backlog."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def connected(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def send(sender: Sender, url: str) -> SendResult:
    async def go() -> SendResult:
        try:
            return await sender.send(url=url, msg_id="msg_1", body=b"{}", secrets=["whsec_" + "A" * 44])
        finally:
            await sender.aclose()

    return asyncio.run(go())


def refused(url: str, policy: TargetPolicy) -> str | None:
    """Why ``url`` is refused when a subscription is saved, or None if it is accepted."""
    try:
        service.check_url(url, policy)
    except InvalidInput as exc:
        return exc.message
    return None


# --- finding 18: ports, 6to4 and friends, metadata -------------------------------------------------------


def test_port_policy() -> None:
    policy = TargetPolicy()
    assert refused(f"https://{PUBLIC}/hook", policy) is None
    assert refused(f"http://{PUBLIC}:80/hook", policy) is None
    assert refused(f"http://{PUBLIC}:8080/hook", policy) is None
    for port in (22, 25, 111, 445, 1023):
        assert "port" in (refused(f"http://{PUBLIC}:{port}/hook", policy) or ""), port
    custom = TargetPolicy.from_settings(Settings(webhook_allowed_ports="443, 8000-8999"))
    assert refused(f"https://{PUBLIC}/hook", custom) is None
    assert refused(f"http://{PUBLIC}:8443/hook", custom) is None
    assert refused(f"http://{PUBLIC}/hook", custom)  # 80 is not in the list
    assert refused(f"http://{PUBLIC}:9000/hook", custom)
    with pytest.raises(ValidationError, match="webhook_allowed_ports"):
        Settings(webhook_allowed_ports="80,http")


def test_ports_are_checked_at_send_time_too(silent_listener: socket.socket) -> None:
    """A subscription saved under a looser policy: the send refuses the port without connecting."""
    port = silent_listener.getsockname()[1]
    sender = Sender(timeout_s=1, policy=TargetPolicy(allow_loopback=True, ports=((80, 80), (443, 443))))
    result = send(sender, f"http://127.0.0.1:{port}/hook")
    assert result.error and result.error.startswith("target refused") and "port" in result.error
    assert not connected(silent_listener)


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "::ffff:127.0.0.1",
    ],
)
def test_ipv6_embedding_a_refused_ipv4_is_refused(address: str) -> None:
    assert refused(f"http://[{address}]/hook", TargetPolicy())


def test_6to4_of_a_public_ipv4_is_allowed() -> None:
    assert refused("http://[2002:5db8:d822::1]/hook", TargetPolicy()) is None


@pytest.mark.parametrize(
    "host",
    ["169.254.169.254", "169.254.170.2", "[fd00:ec2::254]", "100.100.100.200", "[fe80::a9fe:a9fe]"],
)
def test_metadata_addresses_are_refused_even_with_private_targets_allowed(host: str) -> None:
    everything = TargetPolicy(allow_private=True, allow_loopback=True)
    assert refused("http://10.0.0.5/hook", everything) is None  # private targets really are allowed
    reason = refused(f"http://{host}/latest/meta-data/", everything)
    assert reason and ("metadata" in reason or "link-local" in reason), reason


# --- DNS rebinding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rebound", ["127.0.0.1", "169.254.169.254"])
def test_rebinding_to_a_refused_address_connects_nowhere(
    sessions, box: SecretBox, silent_listener: socket.socket, rebound: str
) -> None:
    port = silent_listener.getsockname()[1]
    url = f"http://rebind.test:{port}/hook"
    resolver = Rebinder(PUBLIC, rebound)
    policy = TargetPolicy(allow_private=True, resolver=resolver)  # even with private targets allowed
    sub, _ = create_subscription(sessions, box, CreateWebhookRequest(url=url), policy)
    assert sub.url == url  # saved: the name answered a public address then
    result = send(Sender(timeout_s=1, policy=policy), url)
    assert result.error and result.error.startswith("target refused"), result
    assert resolver.lookups == [("rebind.test", port)] * 2
    assert not connected(silent_listener)  # nothing reached the loopback listener


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(silent_listener) -> None:
    """The send resolves once and connects to that address: a later answer (127.0.0.1) is never used."""
    port = silent_listener.getsockname()[1]
    resolver = Rebinder("127.0.0.2", "127.0.0.1")
    with LocalReceiver(host="127.0.0.2", port=port) as pinned:
        sender = Sender(timeout_s=2, policy=TargetPolicy(allow_loopback=True, resolver=resolver))
        result = send(sender, f"http://rebind.test:{port}/hook?x=1")
        assert result.success, result
        [request] = pinned.requests
    assert request.headers["host"] == f"rebind.test:{port}" and request.path == "/hook?x=1"
    assert len(resolver.lookups) == 1
    assert not connected(silent_listener)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``rebind.test`` (openssl), used as its own CA."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=rebind.test"]
        + ["-addext", "subjectAltName=DNS:rebind.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_https_uses_the_name_for_sni_and_certificate_checks(tls_files, silent_listener) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    port = silent_listener.getsockname()[1]
    resolver = Rebinder("127.0.0.2", "127.0.0.1")
    with LocalReceiver(host="127.0.0.2", port=port, tls=server_ctx) as pinned:
        sender = Sender(
            timeout_s=3,
            policy=TargetPolicy(allow_loopback=True, resolver=resolver),
            verify=ssl.create_default_context(cafile=str(cert)),
        )
        result = send(sender, f"https://rebind.test:{port}/hook")
        assert result.success, result  # the certificate was checked against rebind.test, not 127.0.0.2
        [request] = pinned.requests
    assert pinned.sni == ["rebind.test"]
    assert request.headers["host"] == f"rebind.test:{port}"
    assert not connected(silent_listener)
