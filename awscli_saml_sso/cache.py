"""The credential_process cache: one 0600 JSON file per (IdP, role, endpoint), refreshed once.

The AWS CLI starts `awscli_saml_sso credential-process` before every command and often many
at a time. The cached path reads one small JSON file and imports nothing heavy. A refresh
takes a cross-process lock and re-reads the cache once it holds it, so N callers that find
the cache stale at the same moment cause exactly one sign-in and all get its result.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from awscli_saml_sso.credentials import format_timestamp, parse_timestamp
from awscli_saml_sso.files import atomic_write, ensure_private_dir, locked

if TYPE_CHECKING:
    from awscli_saml_sso.credentials import TemporaryCredentials

log = logging.getLogger(__name__)

#: The AWS CLI refreshes credential_process keys 15 minutes before they expire; handing out
#: keys with less left would make it call us again on every command.
DEFAULT_MIN_REMAINING = 900


@dataclass(frozen=True)
class CachedKeys:
    """The four values of the credential_process JSON, plus their expiry as a datetime."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime

    def __repr__(self) -> str:
        return f"CachedKeys(access_key_id={self.access_key_id!r}, expiration={self.expiration})"

    def process_json(self) -> dict[str, object]:
        """The document the AWS CLI expects from a credential_process (Version 1)."""
        return {
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": format_timestamp(self.expiration),
        }

    @classmethod
    def from_credentials(cls, keys: TemporaryCredentials) -> CachedKeys:
        return cls(keys.access_key_id, keys.secret_access_key, keys.session_token, keys.expiration)


def cache_path(cache_dir: Path, nickname: str, role_arn: str, endpoint_url: str | None) -> Path:
    """The cache file for one IdP, role and STS endpoint (different endpoints never mix)."""
    digest = hashlib.sha256(f"{role_arn}\n{endpoint_url or ''}".encode()).hexdigest()[:20]
    return cache_dir / f"{nickname}-{digest}.json"


def load(path: Path, min_remaining: int, now: datetime | None = None) -> CachedKeys | None:
    """The cached keys if they have more than `min_remaining` seconds left, else None.

    A missing, unreadable or malformed cache is treated as empty: it is only a cache.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        keys = CachedKeys(
            str(document["AccessKeyId"]),
            str(document["SecretAccessKey"]),
            str(document["SessionToken"]),
            parse_timestamp(document["Expiration"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.debug("ignoring unusable cache file %s", path, exc_info=True)
        return None
    now = now or datetime.now(timezone.utc)
    if keys.expiration - now <= timedelta(seconds=min_remaining):
        return None
    return keys


def store(path: Path, keys: CachedKeys) -> None:
    """Write the cache atomically with mode 0600 in a 0700 directory."""
    ensure_private_dir(path.parent)
    atomic_write(path, json.dumps(keys.process_json()).encode("utf-8"))


def cached_or_refreshed(
    path: Path,
    *,
    min_remaining: int,
    refresh: Callable[[], TemporaryCredentials],
    lock_timeout: float,
) -> tuple[CachedKeys, bool]:
    """Keys from the cache, or from one `refresh()` shared by every concurrent caller.

    Returns the keys and whether this call did the refresh. Raises whatever `refresh` raises,
    and LocalFileError when the lock is held longer than `lock_timeout`.
    """
    keys = load(path, min_remaining)
    if keys is not None:
        return keys, False
    ensure_private_dir(path.parent)
    with locked(path, timeout=lock_timeout):
        # Whoever held the lock before us may just have refreshed the cache.
        keys = load(path, min_remaining)
        if keys is not None:
            return keys, False
        log.info("refreshing %s", path.name)
        keys = CachedKeys.from_credentials(refresh())
        store(path, keys)
        return keys, True
