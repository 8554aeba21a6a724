"""Standard Webhooks signing: round trip, tampering, rotation, and agreement with the ``standardwebhooks``
reference package."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from nlp_service.webhooks.signing import (
    SignatureError,
    decode_secret,
    generate_secret,
    sign,
    sign_headers,
    verify,
)

secrets_st = st.integers(24, 32).map(generate_secret)
ids_st = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=" ,."), min_size=1)
bodies_st = st.text(max_size=500)
# Offsets from the time the test runs (not from import time: the suite may run for minutes before it).
offsets_st = st.integers(-200, 200)


def test_secret_format() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(decode_secret(secret)) == 32
    assert generate_secret() != secret
    with pytest.raises(ValueError):
        generate_secret(8)


@given(secret=secrets_st, msg_id=ids_st, body=bodies_st, offset=offsets_st)
@settings(max_examples=100, deadline=None)
def test_round_trip_and_reference_package(secret: str, msg_id: str, body: str, offset: int) -> None:
    ts = int(time.time()) + offset
    headers = sign_headers([secret], msg_id, body, timestamp=ts)
    verify(secret, headers, body.encode())  # ours
    Webhook(secret).verify(body.encode(), headers, json_parse=False)  # the reference implementation
    # and the reference's signature is ours
    reference = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body)
    assert reference == sign(secret, msg_id, ts, body)


@given(secret=secrets_st, msg_id=ids_st, body=bodies_st, offset=offsets_st, data=st.data())
@settings(max_examples=100, deadline=None)
def test_tampering_fails(secret: str, msg_id: str, body: str, offset: int, data: st.DataObject) -> None:
    ts = int(time.time()) + offset
    headers = sign_headers([secret], msg_id, body, timestamp=ts)
    other_body = data.draw(bodies_st.filter(lambda b: b != body))
    other_id = data.draw(ids_st.filter(lambda i: i != msg_id))
    other_ts = ts + data.draw(offsets_st.filter(lambda o: o != 0))
    other_secret = data.draw(secrets_st)
    cases = [
        (secret, headers, other_body),
        (secret, {**headers, "webhook-id": other_id}, body),
        (secret, {**headers, "webhook-timestamp": str(other_ts)}, body),
        (other_secret, headers, body),
    ]
    for key, hdrs, payload in cases:
        with pytest.raises(SignatureError):
            verify(key, hdrs, payload)
        with pytest.raises(WebhookVerificationError):
            Webhook(key).verify(payload, hdrs, json_parse=False)


def test_timestamp_tolerance_and_missing_headers() -> None:
    secret = generate_secret()
    NOW = int(time.time())  # noqa: N806
    old = sign_headers([secret], "msg_1", "{}", timestamp=NOW - 301)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(secret, old, "{}", now=NOW)
    verify(secret, old, "{}", now=NOW, tolerance_s=600)
    with pytest.raises(SignatureError, match="missing"):
        verify(secret, {"webhook-id": "msg_1"}, "{}")


def test_rotation_two_signatures_either_secret_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    headers = sign_headers([new, old], "msg_2", b'{"a":1}')
    assert len(headers["webhook-signature"].split(" ")) == 2
    for key in (old, new):
        verify(key, headers, b'{"a":1}')
        Webhook(key).verify(b'{"a":1}', headers)
    with pytest.raises(SignatureError):
        verify(generate_secret(), headers, b'{"a":1}')
