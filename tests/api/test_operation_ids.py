"""OpenAPI operation ids are clean for generated clients: unique, snake_case, the endpoint's name."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def test_operation_ids_are_unique_snake_case(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    ops = [op for section in ("paths", "webhooks") for item in spec[section].values() for op in item.values()]
    ids = [op["operationId"] for op in ops]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert [i for i in ids if not SNAKE.match(i)] == []
    by_path = {(m, p): op["operationId"] for p, item in spec["paths"].items() for m, op in item.items()}
    assert by_path[("post", "/v1/classify")] == "classify"
    assert by_path[("get", "/v1/alerts")] == "list_alerts"
    assert by_path[("get", "/v1/alerts/{alert_id}")] == "get_alert"
    assert spec["webhooks"]["alert.created"]["post"]["operationId"] == "alert_created_event"
