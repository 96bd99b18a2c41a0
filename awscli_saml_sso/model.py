"""What every step shares: the run's options, how the core talks to the person, the one
keys type, and the few rules more than one step needs (timestamps, loopback, regions).

This module sits below every other project module except `errors`, `files` and `limits`,
and imports nothing heavy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from awscli_saml_sso.errors import NeedsPerson


# How the core talks to the person --------------------------------------------------------------
class Ui(Protocol):
    """How the core talks to the person; the CLI implements it with click."""

    interactive: bool

    def ask(self, prompt: str, *, default: str | None = None, hide: bool = False) -> str: ...
    def confirm(self, prompt: str) -> bool: ...
    def info(self, message: str) -> None: ...  # progress and notes, to stderr
    def warn(self, message: str) -> None: ...
    def result(self, message: str) -> None: ...  # the outcome, to stdout


class Prompter(Protocol):
    """Where the form-filling loop gets what it types: username, password, one-time codes."""

    def username(self) -> str: ...
    def password(self) -> str: ...
    def mfa_code(self, hint: str) -> str: ...
    def info(self, message: str) -> None: ...


def display_available() -> bool:
    """Whether a visible browser window can be shown: always on Windows and macOS, on
    Linux and other Unixes only with an X11 or Wayland display."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def require_interactive(ui: Ui, what: str) -> None:
    """Raise NeedsPerson when the person cannot be asked for `what` (--no-prompt)."""
    if not ui.interactive:
        raise NeedsPerson(
            f"{what} is needed but prompting is disabled (--no-prompt / ASS_NO_PROMPT)"
        )


# What a run was asked to do ---------------------------------------------------------------------
@dataclass(frozen=True)
class RunOptions:
    """What one run of the tool was asked to do, from the command line and the environment.

    Every command shares it: which IdP and how to sign in there, which role, which profile,
    which STS endpoint. The environment and the one-time code stay out of `repr`.
    """

    idp_nickname: str | None = None
    idp_url: str | None = None
    username: str | None = None
    use_stored: bool = False
    show_browser: bool = False
    no_hand_over: bool = False  # never reopen a stuck headless sign-in in a visible window
    use_browser: bool = False
    browser: str | None = None
    driver_path: Path | None = None
    timeout: float | None = None
    mfa_code: str | None = field(default=None, repr=False)
    saml_response_file: str | None = None
    role_arn: str | None = None
    role_selection: int | None = None
    all_roles: bool = False
    profile: str = "saml"
    region: str | None = None
    output: str | None = None
    duration: int | None = None
    endpoint_url: str | None = None
    force: bool = False
    min_remaining: int = 300
    debug: bool = False
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class IdentityProvider:
    """A stored identity provider; never holds a secret."""

    nickname: str
    url: str
    username: str | None = None
    browser: str | None = None


# The one keys type -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    """Temporary AWS keys: what STS issued, what the cache and the credentials file hold.

    `role_arn` and `principal_arn` are empty where the source does not say (a cache file).
    The secret key and the token never show in `repr`.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    role_arn: str = ""
    principal_arn: str = ""

    def __post_init__(self) -> None:
        if self.expiration.tzinfo is None or self.expiration.utcoffset() is None:
            raise ValueError("Keys.expiration must be timezone-aware")
        object.__setattr__(self, "expiration", self.expiration.astimezone(timezone.utc))

    def process_json(self) -> dict[str, object]:
        """The document the AWS CLI expects from a credential_process (Version 1)."""
        return {
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": format_timestamp(self.expiration),
        }

    def remaining(self, now: datetime | None = None) -> timedelta:
        """How long the keys are still valid (negative once expired)."""
        return self.expiration - (now or datetime.now(timezone.utc))


# Timestamps --------------------------------------------------------------------------------------
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


# Loopback ----------------------------------------------------------------------------------------
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str | None) -> bool:
    """True for this machine's own names and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host in LOOPBACK_HOSTS or host.endswith(".localhost"):
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)


# Regions -----------------------------------------------------------------------------------------
#: The usual region of each AWS partition: where STS is called when nothing else says.
PARTITION_REGIONS = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}
_PARTITION_PREFIXES = {"aws-us-gov": "us-gov-", "aws-cn": "cn-"}


def partition_of(arn: str | None) -> str:
    """The partition an ARN names (`aws` when it names none)."""
    parts = (arn or "").split(":")
    return parts[1] if len(parts) > 2 and parts[1] else "aws"


def _in_partition(region: str, partition: str) -> bool:
    prefix = _PARTITION_PREFIXES.get(partition)
    if prefix is not None:
        return region.startswith(prefix)
    return not any(region.startswith(p) for p in _PARTITION_PREFIXES.values())


def region_for(role_arn: str | None, region: str | None, env: Mapping[str, str]) -> str:
    """The region for a role: --region, else AWS_REGION / AWS_DEFAULT_REGION when it lies in
    the role's partition (an SDK's region must not send a GovCloud role to us-east-1), else
    the partition's usual region.
    """
    if region:
        return region
    partition = partition_of(role_arn)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        chosen = (env.get(name) or "").strip()
        if chosen and _in_partition(chosen, partition):
            return chosen
    return PARTITION_REGIONS.get(partition, "us-east-1")
