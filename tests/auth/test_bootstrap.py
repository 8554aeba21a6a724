"""The first key and the keys-off ("open") mode (issue 12, finding 2).

- A fresh server refuses anonymous ``POST /v1/keys``: the first key comes from ``nlp-service keys create``.
- A key created by the CLI (another process) ends open mode at the very next request.
- While keys are off, only loopback clients that address the server by a trusted host name are served
  (DNS rebinding, and an app served on a public address some other way than ``nlp-service serve``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from nlp_service.auth import service
from nlp_service.config import REPO_ROOT, Settings
from nlp_service.db import make_engine, make_sessionmaker
from tests.auth.conftest import auth
from tests.conftest import FakeEngine, local_client, wait_until_ready


def keys_exist(url: str) -> bool:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return service.any_exist(db_session=session)
    finally:
        engine.dispose()


def cli_create_key(database_url: str, scopes: str = "all", name: str = "first") -> str:
    """``nlp-service keys create`` in a separate process against ``database_url``; returns the key."""
    env = {**os.environ, "NLP_DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "nlp_service.cli", "keys", "create", "--name", name, "--scopes", scopes],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_fresh_server_refuses_anonymous_key_creation(app_settings: Settings, start_app) -> None:  # type: ignore[no-untyped-def]
    with start_app(app_settings) as client:
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 200  # keys are off
        response = client.post("/v1/keys", json={"name": "takeover", "scopes": ["admin"]})
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "forbidden"
        assert "nlp-service keys create" in response.json()["error"]
        assert client.delete("/v1/keys/0123456789abcdef").status_code == 403
    assert not keys_exist(app_settings.resolved_database_url())


def test_creating_a_key_ends_open_mode_at_once(app_settings: Settings, start_app, new_key) -> None:  # type: ignore[no-untyped-def]
    with start_app(app_settings) as client:
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 200
        key = new_key("classify")  # another engine and session: as another process or replica would
        # no waiting: the very next anonymous request is refused
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 401
        assert client.post("/v1/classify", json={"texts": ["ok"]}, headers=auth(key)).status_code == 200


def test_the_cli_makes_the_first_key(app_settings: Settings, start_app) -> None:  # type: ignore[no-untyped-def]
    with start_app(app_settings) as client:
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 200
        key = cli_create_key(app_settings.resolved_database_url())
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 401
        assert client.post("/v1/classify", json={"texts": ["fine"]}, headers=auth(key)).status_code == 200
        created = client.post("/v1/keys", json={"name": "bot", "scopes": ["classify"]}, headers=auth(key))
        assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "192.0.2.10", "localhost.evil.example"]
)
def test_untrusted_host_is_refused_while_keys_are_off(app_settings: Settings, start_app, host: str) -> None:  # type: ignore[no-untyped-def]
    with start_app(app_settings) as client:
        response = client.post("/v1/classify", json={"texts": ["fine"]}, headers={"host": host})
        assert response.status_code == 403, response.text
        assert "NLP_TRUSTED_HOSTS" in response.json()["error"]
        for ok in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
            assert client.post("/v1/classify", json={"texts": ["x"]}, headers={"host": ok}).status_code == 200


def test_trusted_hosts_setting_extends_the_allow_list(app_settings: Settings, start_app) -> None:  # type: ignore[no-untyped-def]
    settings = app_settings.model_copy(update={"trusted_hosts": ["api.internal"]})
    with start_app(settings) as client:
        ok = client.post("/v1/classify", json={"texts": ["x"]}, headers={"host": "api.internal:8000"})
        assert ok.status_code == 200, ok.text
        bad = client.post("/v1/classify", json={"texts": ["x"]}, headers={"host": "evil.example"})
        assert bad.status_code == 403
    assert Settings(trusted_hosts="a.example, b.example").trusted_hosts == ["a.example", "b.example"]  # type: ignore[arg-type]


def test_host_is_not_checked_once_keys_are_on(keyed_client) -> None:  # type: ignore[no-untyped-def]
    headers = {**auth(keyed_client.admin_key), "host": "api.example.com"}
    assert keyed_client.post("/v1/classify", json={"texts": ["x"]}, headers=headers).status_code == 200


def test_non_loopback_client_is_refused_while_keys_are_off(app_settings: Settings, fake_engine) -> None:  # type: ignore[no-untyped-def]
    from nlp_service.main import create_app

    remote = {"client": ("192.0.2.77", 40000)}
    with local_client(create_app(app_settings, engine=fake_engine), **remote) as client:
        wait_until_ready(client)
        response = client.post("/v1/classify", json={"texts": ["fine"]})
        assert response.status_code == 403, response.text
        assert "NLP_ALLOW_UNAUTHENTICATED" in response.json()["error"]
    allowed = app_settings.model_copy(update={"allow_unauthenticated": True})
    with local_client(create_app(allowed, engine=fake_engine), **remote) as client:
        wait_until_ready(client)
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 200


def non_loopback_address() -> str | None:
    """An address of this machine on a non-loopback interface (the one a default route would use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@contextmanager
def uvicorn_server(app: object, host: str) -> Iterator[int]:
    """Serve ``app`` with plain uvicorn (not ``nlp-service serve``) on ``host``; yields the port."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_app_served_on_all_interfaces_by_plain_uvicorn_answers_only_loopback(app_settings: Settings) -> None:
    from nlp_service.main import create_app

    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    app = create_app(app_settings, engine=FakeEngine())
    with uvicorn_server(app, "0.0.0.0") as port:
        body = {"texts": ["fine"]}
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port}/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.post(f"http://127.0.0.1:{port}/v1/classify", json=body).status_code == 200
        remote = httpx.post(f"http://{address}:{port}/v1/classify", json=body)
        assert remote.status_code == 403, remote.text
        spoofed = httpx.post(f"http://{address}:{port}/v1/classify", json=body, headers={"host": "localhost"})
        assert spoofed.status_code == 403, spoofed.text  # the client address is checked, not only Host


def _cli_bootstrap(database_url: str, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NLP_DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("NLP_BOOTSTRAP_ADMIN_KEY", None)
    if key is not None:
        env["NLP_BOOTSTRAP_ADMIN_KEY"] = key
    cmd = [sys.executable, "-m", "nlp_service.cli", "keys", "bootstrap", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_keys_bootstrap_makes_the_first_admin_key_once(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The stack's migrate service: a generated key goes to a 0600 file; a second run changes nothing."""
    out = tmp_path / "admin.key"
    first = _cli_bootstrap(database_url, "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""  # never printed when written to a file
    key = out.read_text().strip()
    assert (out.stat().st_mode & 0o777) == 0o600
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        rows = service.get_all(db_session=session)
    assert [r.name for r in rows] == ["bootstrap-admin"] and "admin" in rows[0].scopes.split(",")
    again = _cli_bootstrap(
        database_url, "--out", str(tmp_path / "second.key"), key="nlp_" + "0" * 16 + "_" + "x" * 43
    )
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert not (tmp_path / "second.key").exists()
    with make_sessionmaker(engine)() as session:
        assert len(service.get_all(db_session=session)) == 1
        principal = service.verify(db_session=session, token=key)
    engine.dispose()
    assert principal is not None


def test_keys_bootstrap_takes_the_operators_key_and_refuses_a_malformed_one(database_url: str) -> None:
    bad = _cli_bootstrap(database_url, key="not-a-key")
    assert bad.returncode == 2 and "NLP_BOOTSTRAP_ADMIN_KEY" in bad.stderr
    assert not keys_exist(database_url)  # nothing half-applied
    given = "nlp_0123456789abcdef_" + "k" * 43
    ok = _cli_bootstrap(database_url, key=given)
    assert ok.returncode == 0 and ok.stdout == "", ok.stderr
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        assert service.verify(db_session=session, token=given) is not None
    engine.dispose()
