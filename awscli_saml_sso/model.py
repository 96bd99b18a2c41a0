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
from urllib.parse import urlsplit

from awscli_saml_sso.errors import NeedsPerson
from awscli_saml_sso.timestamps import format_timestamp


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
    """Where the form-filling loop gets what it types: username, password, one-time codes,
    and whether it may type them into a page of a given origin."""

    def username(self) -> str: ...
    def password(self) -> str: ...
    def mfa_code(self, hint: str) -> str: ...
    def info(self, message: str) -> None: ...
    def approve_origin(self, origin: str) -> bool: ...


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
    replay: bool = True  # reuse the IdP's kept session without a browser (idp/replay.py)
    mfa_code: str | None = field(default=None, repr=False)
    saml_response_file: str | None = None
    role_arn: str | None = None
    chain_role_arn: str | None = None  # a second role assumed with the SAML role's keys
    external_id: str | None = None  # the chained role's sts:ExternalId condition
    role_selection: int | None = None
    all_roles: bool = False
    profile_name_template: str | None = None  # --all-roles profile names
    discover_account_names: bool = False  # ask IAM for account aliases (one role per account)
    profile: str = "saml"
    region: str | None = None
    output: str | None = None
    duration: int | None = None
    endpoint_url: str | None = None
    proxy: str | None = None  # an upstream proxy URL, or "direct"
    proxy_pac: str | None = None  # a PAC file's http(s):// or file:// URL
    integrated_auth: str | None = None  # comma-separated hosts that may get Kerberos tickets
    force: bool = False
    min_remaining: int = 300
    debug: bool = False
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class IdentityProvider:
    """A stored identity provider; never holds a secret.

    `origins`: the origins besides the login URL's where the person allowed the username,
    password and codes to be typed (a federated IdP, an MFA provider). `issuer`: the
    assertions' Issuer seen at the first sign-in, so that a change is noticed.
    """

    nickname: str
    url: str
    username: str | None = None
    browser: str | None = None
    proxy: str | None = None  # upstream proxy URL (never with a password), or "direct"
    proxy_pac: str | None = None
    integrated_auth: str | None = None  # comma-separated hosts for Kerberos (Negotiate)
    origins: tuple[str, ...] = ()
    issuer: str | None = None

    @property
    def approved_origins(self) -> frozenset[str]:
        """Where autofill may type: the login URL's origin and the origins approved since."""
        return frozenset({origin_of(self.url), *self.origins})


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


# Input limits ------------------------------------------------------------------------------------
#: The largest SAML response accepted, as XML (a response with 1,000 roles is about 250 KB).
MAX_SAML_XML_BYTES = 2 * 1024 * 1024
#: The largest SAML response accepted as posted or stored: base64 adds a third and
#: URL-encoding a little more. Checked before reading more (a file, the capture post).
MAX_SAML_INPUT_BYTES = 4 * MAX_SAML_XML_BYTES


def saml_too_large(size: int | None = None) -> str:
    """The sentence for a SAML response over the limit (`size` in bytes, when known)."""
    measured = f"{size / 1048576:.1f} MiB; " if size is not None else ""
    return (
        f"The SAML response is too large ({measured}the limit is "
        f"{MAX_SAML_XML_BYTES // 1048576} MiB and real responses are far smaller), so it is "
        "refused."
    )


# Origins -----------------------------------------------------------------------------------------
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """The web origin of `url` (`https://idp.example.com`, `http://127.0.0.1:8080`): scheme,
    host and a port other than the scheme's default, lower-cased; "" when it has none (a
    `data:` or `about:` URL, an opaque origin, where nothing is ever typed).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + ("" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}")


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


# Proxies ---------------------------------------------------------------------------------------
# Where an assertion goes ----------------------------------------------------------------------
#: AWS's sign-in hosts, one per partition: the only place a SAMLResponse is ever posted to.
CAPTURE_HOSTS: tuple[str, ...] = (
    "signin.aws.amazon.com",
    "signin.amazonaws-us-gov.com",
    "signin.amazonaws.cn",
)


def is_capture_host(host: str) -> bool:
    """Whether `host` is one of AWS's sign-in endpoints (regional ones included)."""
    host = host.lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in CAPTURE_HOSTS)


def is_capture_request(host: str, method: str, path: str) -> bool:
    """Tell whether a request is the assertion post to AWS (the capture proxy answers it
    itself; a session replay stops there and posts nothing).

    Regional endpoints (``us-east-1.signin.aws.amazon.com``) and the per-ACS paths
    (``/saml/acs/...``) are AWS sign-in endpoints too, so they are captured as well.
    """
    host = host.lower().rstrip(".")
    on_aws = is_capture_host(host)
    first_segment = path.split("?", 1)[0].lstrip("/").split("/", 1)[0]
    return on_aws and method.upper() == "POST" and first_segment == "saml"


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
