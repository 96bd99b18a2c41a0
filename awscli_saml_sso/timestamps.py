"""Timestamps as the AWS files and this tool write them (RFC 3339, UTC), and as people read them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as the AWS CLI writes it: `2026-11-21T11:00:00Z`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """The inverse of format_timestamp (a naive time counts as UTC). Raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def local_and_utc(moment: datetime) -> str:
    """`2026-11-21 13:17:27 CET (2026-11-21 12:17:27 UTC)`; UTC once when local time is UTC."""
    utc = f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    local = moment.astimezone()
    if local.utcoffset() == timedelta(0):
        return utc
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({utc})"
