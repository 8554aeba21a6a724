"""The worker tests run the webhook jobs: they use the webhook fixtures (a fresh database with the webhook
tables, its settings and sessions, a local receiver)."""

from tests.webhooks.conftest import db_url, receiver, sessions, settings

__all__ = ["db_url", "receiver", "sessions", "settings"]
