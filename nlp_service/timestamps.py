"""Time helpers: the one timestamp type of request models (ISO 8601 with a time zone, normalised to UTC,
in a sane range), the current time, and the floor of a series bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


BUCKET_SECONDS = {"hour": 3600, "day": 86400}  # the bucket sizes of topic-count series
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def floor_bucket(ts: datetime, bucket: str) -> datetime:
    """Start (UTC) of the ``hour`` or ``day`` bucket holding ``ts``."""
    bs = BUCKET_SECONDS[bucket]
    since = ts.astimezone(UTC) - EPOCH  # exact (no float), also before 1970
    seconds = since.days * 86400 + since.seconds
    return EPOCH + timedelta(seconds=seconds - seconds % bs)
