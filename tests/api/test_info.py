"""``GET /info`` describes the served encoder (the fuzz found it answering 500 on the test engine)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_info_names_the_encoder_and_its_runtime(app_client: TestClient) -> None:
    response = app_client.get("/info")
    assert response.status_code == 200, response.text
    encoder = response.json()["encoder"]
    assert encoder["dim"] == 384 and encoder["runtime"]
    assert encoder["adapter"] is None and encoder["base_sha256"] == encoder["sha256"]  # the stock encoder
