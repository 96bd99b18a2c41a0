"""Where the tool keeps things on disk, what may name them, and when cached keys are fresh.

Light on purpose (the standard library and `timestamps` only): the console script (`main`)
answers a cached `credential-process` call with it before the command line and the rest of
the package are loaded. The rules here are the only copy: `idp.store` and `keys` use them too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from awscli_saml_sso.timestamps import format_timestamp, parse_timestamp

#: A stored IdP's nickname: it names files (browser profile, cache) and menu entries.
NICKNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # use fullmatch

#: The AWS CLI refreshes credential_process keys 15 minutes before they expire; handing out
#: keys with less left would make it call us again on every command.
DEFAULT_MIN_REMAINING = 900
#: A sign-in run keeps a profile with more than this many seconds left (--min-remaining).
LOGIN_MIN_REMAINING = 300
#: The default refresh window never exceeds this share of the keys' lifetime: with a
#: SessionDuration at or under the window, keys would otherwise be stale at birth and every
#: call would sign in.
MAX_WINDOW_SHARE = 0.5


def config_dir(env: Mapping[str, str]) -> Path:
    """The tool's directory: ASS_CONFIG_DIR, else `~/.awscli_saml_sso`."""
    configured = env.get("ASS_CONFIG_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".awscli_saml_sso"


def refresh_failure_path(config: Path, nickname: str) -> Path:
    """Where a failed automatic refresh at this IdP is recorded (see `idp.store`)."""
    return config / "cache" / f"{nickname}.refresh-failed.json"


def cache_path(
    cache_dir: Path,
    nickname: str,
    role_arn: str,
    endpoint_url: str | None,
    *,
    username: str = "",
    idp_url: str = "",
    chain: Sequence[str] = (),
) -> Path:
    """The cache file for one IdP (nickname and login URL), user, role (with the roles
    chained from it) and STS endpoint: after a switch of user, IdP URL, endpoint or chain, no
    one is handed the keys of another.
    """
    key = "\n".join((role_arn, endpoint_url or "", username, idp_url, *chain))
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir / f"{nickname}-{digest}.json"


def refresh_window(min_remaining: int, lifetime: timedelta | None) -> timedelta:
    """How long before expiry cached keys count as stale: `min_remaining` seconds; the
    default window is clamped to a share of the keys' lifetime when that is known (a window
    the person chose with --min-remaining is honoured as given)."""
    window = timedelta(seconds=min_remaining)
    if min_remaining != DEFAULT_MIN_REMAINING:
        return window
    if lifetime is not None and lifetime > timedelta(0):
        window = min(window, lifetime * MAX_WINDOW_SHARE)
    return window


def fresh_keys(
    path: Path, min_remaining: int, now: datetime | None = None
) -> dict[str, str] | None:
    """The cached keys (AccessKeyId, SecretAccessKey, SessionToken, Expiration in UTC) if they
    have more than the refresh window left, else None.

    A missing, unreadable or malformed cache is treated as empty: it is only a cache.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        found = {
            name: document[name] for name in ("AccessKeyId", "SecretAccessKey", "SessionToken")
        }
        if not all(isinstance(value, str) for value in found.values()):
            raise TypeError("the keys are not strings")
        expiration = parse_timestamp(document["Expiration"])
        issued = document.get("x_issued")
        lifetime = expiration - parse_timestamp(issued) if issued else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # the next refresh writes it anew
    now = now or datetime.now(timezone.utc)
    if expiration - now <= refresh_window(min_remaining, lifetime):
        return None
    return {**found, "Expiration": format_timestamp(expiration)}
