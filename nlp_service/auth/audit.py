"""The audit log of key operations: one structured line (logger ``nlp_service.audit``) per create, list and
revoke, and per refused attempt, naming the acting key (``actor_key_id``; None from the CLI). Never a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

from nlp_service.auth.tables import ApiKey
from nlp_service.hardening.logs import REQUEST_ID

log = logging.getLogger("nlp_service.audit")

Via = Literal["http", "cli"]


def key_event(
    event: str,
    *,
    actor_key_id: str | None,
    via: Via,
    key: ApiKey | None = None,
    scopes: Iterable[str] | None = None,
    reason: str | None = None,
) -> None:
    """Log ``event`` (``key.created``, ``key.listed``, ``key.revoked``, ``key.<action>_refused``)."""
    extra: dict[str, object] = {"event": event, "actor_key_id": actor_key_id, "via": via}
    extra["request_id"] = REQUEST_ID.get()  # kept on the record: the audit line ties to the access log
    if key is not None:
        extra.update(target_key_id=key.id, key_name=key.name, scopes=key.scope_list)
    if scopes is not None:
        extra["scopes"] = sorted(scopes)
    if reason is not None:
        extra["reason"] = reason
    log.log(logging.WARNING if event.endswith("_refused") else logging.INFO, event, extra=extra)
