"""Start-up safety: a non-loopback bind without API keys is refused unless explicitly allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp_service import cli
from nlp_service.config import Settings
from nlp_service.hardening.bind import UnsafeBind, check_bind, host_name, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"])
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.5", "example.com", ""])
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("header", "name"),
    [("localhost:8000", "localhost"), ("[::1]:8000", "::1"), ("A.Example.:80", "a.example"), ("::1", "::1")],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_check_bind() -> None:
    settings = Settings()
    check_bind(settings, "127.0.0.1", keys_on=False)
    check_bind(settings, "0.0.0.0", keys_on=True)
    with pytest.raises(UnsafeBind, match="NLP_ALLOW_UNAUTHENTICATED"):
        check_bind(settings, "0.0.0.0", keys_on=False)
    check_bind(settings.model_copy(update={"allow_unauthenticated": True}), "0.0.0.0", keys_on=False)


def test_serve_refuses_a_public_bind_without_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NLP_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("NLP_DATABASE_URL", raising=False)
    monkeypatch.setattr(cli, "configure_logging", lambda *a, **k: None)

    def no_server(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr("uvicorn.run", no_server)
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2


def test_keys_cli_create_list_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NLP_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("NLP_DATABASE_URL", raising=False)
    monkeypatch.setattr(cli, "configure_logging", lambda *a, **k: None)
    assert cli.main(["keys", "create", "--name", "ci", "--scopes", "classify,search"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("nlp_")
    key_id = key.split("_")[1]
    assert cli.main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "classify,search" in listed and key.split("_", 2)[2] not in listed
    assert cli.main(["keys", "revoke", key_id]) == 0
    assert cli.main(["keys", "revoke", "ffffffffffffffff"]) == 1
    assert cli.main(["keys", "create", "--name", "x", "--scopes", "root"]) == 2
