"""Failed authentication is rate-limited per client address, before any key lookup (issue 12, finding 11)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import event

from nlp_service.config import Settings
from tests.auth.conftest import auth
from tests.conftest import local_client

BAD_KEY = "nlp_0123456789abcdef_" + "x" * 43
BUDGET = 10


def classify(client: TestClient, key: str | None) -> int:
    return client.post("/v1/classify", json={"texts": ["x"]}, headers=auth(key) if key else None).status_code


def test_bad_keys_beyond_the_budget_get_429_without_a_key_lookup(
    app_settings: Settings,
    start_app,  # type: ignore[no-untyped-def]
    new_key,  # type: ignore[no-untyped-def]
) -> None:
    update = {
        "rate_limit_per_s": 1,
        "rate_limit_burst": 5,
        "auth_failure_per_s": 0.01,
        "auth_failure_burst": BUDGET,
    }
    new_key("admin")  # keys are on
    with start_app(app_settings.model_copy(update=update)) as client:
        statements: list[str] = []
        engine = client.app.state.nlp.auth.store.engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        statuses = [classify(client, BAD_KEY) for _ in range(50)]
        assert statuses[:BUDGET] == [401] * BUDGET, statuses
        assert set(statuses[BUDGET:]) == {429}, statuses
        limited = client.post("/v1/classify", json={"texts": ["x"]}, headers=auth(BAD_KEY))
        assert limited.json()["type"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        assert len(statements) == BUDGET, statements  # one key read per counted failure, none after
        assert classify(client, None) == 401  # a missing key costs no lookup and is not limited here
        other = local_client(client.app, client=("127.0.0.2", 40000))  # another address: its own budget
        assert classify(other, BAD_KEY) == 401


def test_valid_keys_do_not_use_the_failure_budget(app_settings: Settings, start_app, new_key) -> None:  # type: ignore[no-untyped-def]
    good = new_key("classify")
    update = {"auth_failure_per_s": 0.01, "auth_failure_burst": 2}
    with start_app(app_settings.model_copy(update=update)) as client:
        assert [classify(client, good) for _ in range(10)] == [200] * 10
        assert [classify(client, BAD_KEY) for _ in range(3)] == [401, 401, 429]
