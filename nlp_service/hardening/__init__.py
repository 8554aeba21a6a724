"""Hardening: rate limits, body-size and time limits, request ids, JSON logs with redaction, bind checks."""
