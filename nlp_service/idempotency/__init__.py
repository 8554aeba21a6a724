"""Idempotency keys: a retried creating POST (``Idempotency-Key`` header) gets the first response back."""
