"""The whole login, top to bottom: preflight, skip if still valid, assertion, role, STS,
write, report.

This module has no click import: the CLI builds `RunOptions` and a `Ui` and calls `login()`.
selenium, mitmproxy and boto3 load only inside the steps that need them.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from awscli_saml_sso import timing
from awscli_saml_sso.aws import config_files, sts
from awscli_saml_sso.aws.roles import NO_ROLE, all_role_profiles, choose_role
from awscli_saml_sso.aws.saml import Assertion, Role, parse_saml_response
from awscli_saml_sso.browser.capture import BrowserPlan, browser_name, capture_assertion
from awscli_saml_sso.errors import NoRoleError, StsError, UsageError
from awscli_saml_sso.idp.choose import choose_idp, store_idp_url
from awscli_saml_sso.idp.prompter import TerminalPrompter, remember
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import (
    Keys,
    RunOptions,
    Ui,
    display_available,
    local_and_utc,
    parse_timestamp,
    region_for,
)

log = logging.getLogger(__name__)
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


@dataclass(frozen=True)
class LoginResult:
    """What a login wrote: profile name -> role ARN, or nothing when it was skipped."""

    profiles: dict[str, str]
    skipped: bool = False


# Skip when still valid -----------------------------------------------------------------------
def still_valid(
    opts: RunOptions, profile: Mapping[str, str] | None, now: datetime | None = None
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
        expires = parse_timestamp(profile["x_security_token_expires"])
    except ValueError:
        return None
    now = now or datetime.now(timezone.utc)
    return expires if expires - now > timedelta(seconds=opts.min_remaining) else None


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


def browser_plan(opts: RunOptions, settings: Settings, nickname: str) -> BrowserPlan:
    """How the browser runs for this IdP: options, its persistent profile, the proxy's CA."""
    return BrowserPlan(
        browser=opts.browser,
        driver_path=opts.driver_path,
        visible=opts.show_browser or opts.use_browser,
        autofill=not opts.use_browser,
        timeout=opts.timeout,
        profile_dir=settings.browser_profile(nickname),
        ca_dir=settings.private_dir("proxy"),
        debug_dir=settings.private_dir("debug") if opts.debug else None,
        hand_over=not opts.no_hand_over and display_available(),
    )


def sign_in_at_idp(opts: RunOptions, settings: Settings, ui: Ui) -> str:
    """Choose the IdP, capture its assertion in a browser, keep what the person typed."""
    idp = choose_idp(opts, settings, ui)
    if opts.browser is None and idp.browser:
        opts = replace(opts, browser=idp.browser)
    if opts.username and idp.username and opts.username.strip() != idp.username:
        # The IdP session in the profile belongs to the previous user: it would sign us in
        # as them without asking. A new user starts with a new profile.
        ui.info(f"Signing in as {opts.username} instead of {idp.username}: new browser profile.")
        shutil.rmtree(settings.browser_profile(idp.nickname), ignore_errors=True)
    plan = browser_plan(opts, settings, idp.nickname)
    name = browser_name(plan)
    ui.info(f"Signing in to {idp.nickname} with {name}{'' if plan.visible else ' (headless)'}...")
    prompter = TerminalPrompter(opts, idp, ui)
    capture = capture_assertion(idp.url, plan, prompter)
    remember(settings, replace(idp, browser=capture.browser), prompter, ui)
    return capture.saml_response


def fetch_assertion(opts: RunOptions, settings: Settings, ui: Ui) -> Assertion:
    """The parsed assertion: from --saml-response-file, else signed in at the IdP."""
    if opts.saml_response_file:
        raw: str | bytes = read_saml_response_file(opts.saml_response_file)
    else:
        raw = sign_in_at_idp(opts, settings, ui)
    with timing.span("saml parse"):
        return parse_saml_response(raw)


# Roles and keys -----------------------------------------------------------------------------
def pick_targets(opts: RunOptions, assertion: Assertion, ui: Ui) -> dict[str, Role]:
    """Profile name -> role to assume: every role with --all-roles, else the one chosen."""
    if opts.all_roles:
        return all_role_profiles(assertion.roles)
    ask = (lambda prompt: ui.ask(prompt)) if ui.interactive else None
    choice = choose_role(
        assertion.roles, role_arn=opts.role_arn, selection=opts.role_selection, ask=ask
    )
    ui.info(f"Using {choice.role.role_arn} ({choice.reason}).")
    return {opts.profile: choice.role}


def sts_target(opts: RunOptions, role_arn: str) -> sts.StsTarget:
    """Where STS calls for `role_arn` go: the one region rule, or --endpoint-url."""
    return sts.StsTarget(region_for(role_arn, opts.region, opts.env), opts.endpoint_url)


def issue_keys(
    opts: RunOptions, assertion: Assertion, targets: Mapping[str, Role], ui: Ui
) -> dict[str, Keys]:
    """Call STS once per target (profile name -> role). Raises StsError."""
    duration, note = sts.requested_duration(assertion, opts.duration)
    if note:
        ui.warn(note)
    issued: dict[str, Keys] = {}
    with timing.span("sts"):
        for profile, role in targets.items():
            issued[profile] = sts.assume_role_with_saml(
                assertion, role, sts_target(opts, role.role_arn), duration=duration, notify=ui.warn
            )
    return issued


def list_roles(opts: RunOptions, settings: Settings, ui: Ui) -> tuple[Role, ...]:
    """The roles the IdP grants (the `roles` command). Raises NoRoleError when there is none."""
    assertion = fetch_assertion(opts, settings, ui)
    if not assertion.roles:
        raise NoRoleError(NO_ROLE)
    return assertion.roles


# Checks before a sign-in ---------------------------------------------------------------------
def _config_settings(opts: RunOptions) -> dict[str, str]:
    return {
        key: value for key, value in (("region", opts.region), ("output", opts.output)) if value
    }


def preflight(opts: RunOptions, settings: Settings) -> Mapping[str, str] | None:
    """Everything that can be checked before a sign-in, so that a bad profile name or a
    corrupt AWS file fails at once, not after the person typed a password and an MFA code.
    """
    config_files.validate_profile_name(opts.profile)
    if opts.region and not REGION.fullmatch(opts.region):
        raise UsageError(f"{opts.region!r} is not an AWS region name (e.g. eu-west-1)")
    profile = config_files.read_profile(config_files.credentials_file(opts.env), opts.profile)
    if _config_settings(opts):
        if not opts.all_roles:
            config_files.check_config_settings(opts.profile, _config_settings(opts))
        config_files.read_profile(config_files.config_file(opts.env), opts.profile)
    store_idp_url(opts, settings)  # now: a still-valid profile must not make us forget it
    return profile


# The login ------------------------------------------------------------------------------------
def login(opts: RunOptions, settings: Settings, ui: Ui) -> LoginResult:
    """Sign in and write temporary credentials; raises the project's errors."""
    expires = still_valid(opts, preflight(opts, settings))
    if expires is not None:
        ui.result(
            f"The {opts.profile} profile still holds valid credentials until "
            f"{local_and_utc(expires)}; nothing to do (use --force to sign in anyway)."
        )
        return LoginResult(profiles={}, skipped=True)
    assertion = fetch_assertion(opts, settings, ui)
    issued = issue_keys(opts, assertion, pick_targets(opts, assertion, ui), ui)
    path = config_files.credentials_file(opts.env)
    config = _config_settings(opts)
    with timing.span("write"):
        if config:  # first: it is the one whose names are stricter (no spaces for botocore)
            config_files.write_configs(
                config_files.config_file(opts.env), {profile: config for profile in issued}
            )
        config_files.write_credentials(path, issued)
    _report(opts, issued, path, ui)
    return LoginResult(profiles={name: keys.role_arn for name, keys in issued.items()})


def _report(opts: RunOptions, issued: dict[str, Keys], path: Path, ui: Ui) -> None:
    for profile, keys in issued.items():
        ui.result(
            f"Your new access key pair has been stored in the AWS credentials file {path} "
            f"under the {profile} profile."
        )
        ui.result(f"It expires at {local_and_utc(keys.expiration)}; run this tool again then.")
        ui.result(
            f"To use it, call the AWS CLI with the --profile option "
            f"(e.g. aws --profile {profile} sts get-caller-identity)."
        )
    # One GetCallerIdentity proves the keys work; a failure here must not undo the sign-in.
    keys = next(iter(issued.values()))
    try:
        with timing.span("check"):
            ui.result(f"Signed in as {sts.caller_identity(keys, sts_target(opts, keys.role_arn))}.")
    except StsError as exc:
        ui.warn(f"The new keys were stored, but checking them failed: {exc.message}")


def clean(settings: Settings, ui: Ui, *, yes: bool) -> None:
    """--clean: forget every stored IdP, password and browser profile, after confirmation."""
    if not yes and not ui.confirm(f"Remove everything stored in {settings.config_dir}?"):
        ui.info("Nothing removed.")
        return
    removed = settings.clean()
    ui.result("Removed: " + ", ".join(removed) if removed else "Nothing was stored.")
