"""The malloc arena cap used by serve and worker."""

from __future__ import annotations

import sys

import pytest

from nlp_service.memory import limit_malloc_arenas


def test_zero_leaves_malloc_alone() -> None:
    assert limit_malloc_arenas(0) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_cap_is_applied_on_glibc() -> None:
    assert limit_malloc_arenas(2) is True
