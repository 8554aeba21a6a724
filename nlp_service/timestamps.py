"""The one timestamp type of request models: ISO 8601 with a time zone, normalised to UTC, in a sane range."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

MIN_YEAR, MAX_YEAR = 1900, 9998


def _to_utc(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"timestamp out of range (years {MIN_YEAR}-{MAX_YEAR})") from exc
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ValueError(f"timestamp out of range (years {MIN_YEAR}-{MAX_YEAR})")
    return utc


Timestamp = Annotated[AwareDatetime, AfterValidator(_to_utc)]
