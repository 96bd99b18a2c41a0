"""The sign-in, top to bottom: settings, skip if still valid, assertion, role, STS, file.

This module has no click import: the CLI builds a `LoginOptions`, a `Ui` and calls `login()`.
The browser half (proxy, browser, autofill) is imported only when a browser is needed.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from awscli_saml_sso import credentials as creds_file
from awscli_saml_sso.errors import NeedsPerson, UsageError
from awscli_saml_sso.settings import IdentityProvider, Settings

if TYPE_CHECKING:
    from awscli_saml_sso.saml import Assertion, Role

log = logging.getLogger(__name__)
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


class Ui(Protocol):
    """How the core talks to the person; the CLI implements it with click."""

    interactive: bool

    def ask(self, prompt: str, *, default: str | None = None, hide: bool = False) -> str: ...
    def confirm(self, prompt: str) -> bool: ...
    def info(self, message: str) -> None: ...  # progress and notes, to stderr
    def warn(self, message: str) -> None: ...
    def result(self, message: str) -> None: ...  # the outcome, to stdout


@dataclass(frozen=True)
class LoginOptions:
    """Everything a sign-in can be told from the command line or the environment."""

    idp_nickname: str | None = None
    idp_url: str | None = None
    username: str | None = None
    use_stored: bool = False
    show_browser: bool = False
    use_browser: bool = False
    browser: str | None = None
    driver_path: Path | None = None
    timeout: float | None = None
    mfa_code: str | None = None
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
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoginResult:
    """What a sign-in wrote: profile name -> role ARN, or nothing when it was skipped."""

    profiles: dict[str, str]
    skipped: bool = False


# Skip when still valid -----------------------------------------------------------------------
def still_valid(
    opts: LoginOptions, profile: Mapping[str, str] | None, now: datetime | None = None
) -> datetime | None:
    """The expiry of the target profile's credentials if they can be kept, else None.

    Kept only when they came from this tool, have more than `min_remaining` seconds left and
    are for the requested role (with no role requested, for the role chosen last time).
    """
    if opts.force or opts.all_roles or opts.saml_response_file or opts.role_selection is not None:
        return None
    if not profile or "x_security_token_expires" not in profile:
        return None
    if opts.role_arn and profile.get("x_role_arn") != opts.role_arn.strip():
        return None
    try:
        expires = creds_file.parse_timestamp(profile["x_security_token_expires"])
    except ValueError:
        return None
    now = now or datetime.now(timezone.utc)
    return expires if expires - now > timedelta(seconds=opts.min_remaining) else None


def _local_and_utc(moment: datetime) -> str:
    """`2026-11-21 13:17:27 CET (2026-11-21 12:17:27 UTC)`; UTC once when local time is UTC."""
    utc = f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    local = moment.astimezone()
    if local.utcoffset() == timedelta(0):
        return utc
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({utc})"


# Getting the assertion ------------------------------------------------------------------------
def read_saml_response_file(source: str) -> bytes:
    """The bytes of --saml-response-file (a path, or `-` for stdin). Raises UsageError.

    Bytes, not text: an XML document may declare its own encoding (UTF-16, say).
    """
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read the SAML response file {source}: {exc.strerror or exc}"
        ) from exc


def obtain_saml_response(opts: LoginOptions, settings: Settings, ui: Ui) -> str | bytes:
    """The SAMLResponse text: from --saml-response-file, else by signing in with a browser."""
    if opts.saml_response_file:
        return read_saml_response_file(opts.saml_response_file)
    from awscli_saml_sso.signin import browser_sign_in

    return browser_sign_in(opts, settings, ui)


# Assertion, roles, keys -------------------------------------------------------------------
def fetch_assertion(opts: LoginOptions, settings: Settings, ui: Ui) -> Assertion:
    """Obtain the SAMLResponse (file or browser) and parse it. Raises the project's errors."""
    from awscli_saml_sso.saml import parse_saml_response

    return parse_saml_response(obtain_saml_response(opts, settings, ui))


def issue_credentials(
    opts: LoginOptions, assertion: Assertion, targets: Mapping[str, Role], ui: Ui
) -> dict[str, creds_file.TemporaryCredentials]:
    """Call STS once per target (profile name -> role). Raises StsError."""
    from awscli_saml_sso import sts

    duration, note = sts.requested_duration(assertion, opts.duration)
    if note:
        ui.warn(note)
    issued: dict[str, creds_file.TemporaryCredentials] = {}
    for profile, role in targets.items():
        target = sts.StsTarget(sts.region_for(role, opts.region), opts.endpoint_url)
        issued[profile] = sts.assume_role_with_saml(
            assertion, role, target, duration=duration, notify=ui.warn
        )
    return issued


def pick_targets(opts: LoginOptions, assertion: Assertion, ui: Ui) -> dict[str, Role]:
    """Profile name -> role to assume: every role with --all-roles, else the one chosen."""
    from awscli_saml_sso.roles import all_role_profiles, choose_role

    if opts.all_roles:
        return all_role_profiles(assertion.roles)
    ask = (lambda prompt: ui.ask(prompt)) if ui.interactive else None
    choice = choose_role(
        assertion.roles, role_arn=opts.role_arn, selection=opts.role_selection, ask=ask
    )
    ui.info(f"Using {choice.role.role_arn} ({choice.reason}).")
    return {opts.profile: choice.role}


# Checks before a sign-in ---------------------------------------------------------------------
def _config_settings(opts: LoginOptions) -> dict[str, str]:
    return {
        key: value for key, value in (("region", opts.region), ("output", opts.output)) if value
    }


def preflight(opts: LoginOptions, settings: Settings) -> Mapping[str, str] | None:
    """Everything that can be checked before a sign-in, so that a bad profile name or a
    corrupt AWS file fails at once, not after the person typed a password and an MFA code.
    """
    creds_file.validate_profile_name(opts.profile)
    if opts.region and not REGION.fullmatch(opts.region):
        raise UsageError(f"{opts.region!r} is not an AWS region name (e.g. eu-west-1)")
    profile = creds_file.read_profile(creds_file.credentials_file(opts.env), opts.profile)
    if _config_settings(opts):
        if not opts.all_roles:
            creds_file.check_config_settings(opts.profile, _config_settings(opts))
        creds_file.read_profile(creds_file.config_file(opts.env), opts.profile)
    store_idp_url(opts, settings)  # now: a still-valid profile must not make us forget it
    return profile


def store_idp_url(opts: LoginOptions, settings: Settings) -> IdentityProvider | None:
    """Add or update the IdP given with --idp-url (and --idp-nickname); None without it.

    The username is stored after a successful sign-in, not here. Nothing is written when the
    stored entry already has this URL. Raises UsageError.
    """
    if not opts.idp_url:
        return None
    if not opts.idp_nickname:
        raise UsageError("--idp-url needs --idp-nickname to name the identity provider")
    stored = settings.load_idps().get(opts.idp_nickname)
    if stored is not None and stored.url == opts.idp_url.strip():
        return stored
    return settings.save_idp(IdentityProvider(nickname=opts.idp_nickname, url=opts.idp_url))


# The sign-in ----------------------------------------------------------------------------------
def login(opts: LoginOptions, settings: Settings, ui: Ui) -> LoginResult:
    """Sign in and write temporary credentials; raises the project's errors."""
    expires = still_valid(opts, preflight(opts, settings))
    if expires is not None:
        ui.result(
            f"The {opts.profile} profile still holds valid credentials until "
            f"{_local_and_utc(expires)}; nothing to do (use --force to sign in anyway)."
        )
        return LoginResult(profiles={}, skipped=True)
    assertion = fetch_assertion(opts, settings, ui)
    issued = issue_credentials(opts, assertion, pick_targets(opts, assertion, ui), ui)
    path = creds_file.credentials_file(opts.env)
    config = _config_settings(opts)
    if config:  # first: it is the one whose names are stricter (no spaces for botocore)
        creds_file.write_configs(
            creds_file.config_file(opts.env), {profile: config for profile in issued}
        )
    creds_file.write_credentials(path, issued)
    _report(opts, issued, path, ui)
    return LoginResult(profiles={name: keys.role_arn for name, keys in issued.items()})


def _report(
    opts: LoginOptions,
    issued: dict[str, creds_file.TemporaryCredentials],
    path: Path,
    ui: Ui,
) -> None:
    from awscli_saml_sso import sts
    from awscli_saml_sso.errors import StsError
    from awscli_saml_sso.saml import Role

    for profile, keys in issued.items():
        ui.result(
            f"Your new access key pair has been stored in the AWS credentials file {path} "
            f"under the {profile} profile."
        )
        ui.result(f"It expires at {_local_and_utc(keys.expiration)}; run this tool again then.")
        ui.result(
            f"To use it, call the AWS CLI with the --profile option "
            f"(e.g. aws --profile {profile} sts get-caller-identity)."
        )
    # One GetCallerIdentity proves the keys work; a failure here must not undo the sign-in.
    profile, keys = next(iter(issued.items()))
    role = Role(keys.role_arn, keys.principal_arn)
    target = sts.StsTarget(sts.region_for(role, opts.region), opts.endpoint_url)
    try:
        ui.result(f"Signed in as {sts.caller_identity(keys, target)}.")
    except StsError as exc:
        ui.warn(f"The new keys were stored, but checking them failed: {exc.message}")


def require_interactive(ui: Ui, what: str) -> None:
    """Raise NeedsPerson when the person cannot be asked for `what` (--no-prompt)."""
    if not ui.interactive:
        raise NeedsPerson(
            f"{what} is needed but prompting is disabled (--no-prompt / ASS_NO_PROMPT)"
        )
