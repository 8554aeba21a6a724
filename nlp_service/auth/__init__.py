"""API keys: hashed storage, scopes, and ``require_scope``, the dependency every ``/v1`` router needs."""
