"""The whole login, top to bottom: preflight, skip if still valid, assertion, role, STS,
write, report.

This module has no click import: the CLI builds `RunOptions` and a `Ui` and calls `login()`.
selenium, mitmproxy and boto3 load only inside the steps that need them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from awscli_saml_sso import timing
from awscli_saml_sso.aws import accounts, chain, config_files, sts
from awscli_saml_sso.aws.roles import NO_ROLE, account_label, all_role_profiles, choose_role
from awscli_saml_sso.aws.saml import Assertion, Role, parse_saml_response
from awscli_saml_sso.aws.validity import (
    FROM_FILE,
    check_region,
    kept_until,
    nothing_to_do,
    origin_values,
)
from awscli_saml_sso.browser.plan import HEADLESS_TIMEOUT, BrowserPlan, Capture, browser_name
from awscli_saml_sso.browser.profile import clear_profile
from awscli_saml_sso.errors import LocalFileError, NoRoleError, SamlError, StsError, UsageError
from awscli_saml_sso.files import PRIVATE_FILE_MODE, make_private
from awscli_saml_sso.idp import replay, sessions, upstream
from awscli_saml_sso.idp.choose import choose_idp, store_idp_url
from awscli_saml_sso.idp.prompter import TerminalPrompter, remember
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import (
    MAX_SAML_INPUT_BYTES,
    IdentityProvider,
    Keys,
    RunOptions,
    Ui,
    display_available,
    region_for,
    saml_too_large,
)
from awscli_saml_sso.network import Router, ca_bundle, integrated_auth_hosts
from awscli_saml_sso.timestamps import local_and_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginResult:
    """What a login wrote: profile name -> role ARN, or nothing when it was skipped."""

    profiles: dict[str, str]
    skipped: bool = False


# Skip when still valid -----------------------------------------------------------------------
def requested_idp_url(opts: RunOptions, settings: Settings) -> str | None:
    """The login URL this run asks for (--idp-url, or the stored --idp-nickname's), if any."""
    if opts.idp_url:
        return opts.idp_url.strip()
    if opts.idp_nickname:
        stored = settings.load_idps().get(opts.idp_nickname)
        return stored.url if stored else None
    return None


def still_valid(
    opts: RunOptions,
    profile: Mapping[str, str] | None,
    now: datetime | None = None,
    *,
    idp_url: str | None = None,
) -> datetime | None:
    """The expiry of the target profile's credentials if they can be kept, else None (see
    `validity.kept_until`; never with --force, --all-roles, --saml-response-file or
    --role-selection)."""
    if opts.force or opts.all_roles or opts.saml_response_file or opts.role_selection is not None:
        return None
    return kept_until(
        profile,
        role_arn=opts.chain_role_arn or opts.role_arn,
        endpoint_url=opts.endpoint_url,
        idp_url=idp_url,
        min_remaining=opts.min_remaining,
        now=now,
    )


# Getting the assertion ------------------------------------------------------------------------
def read_saml_response_file(source: str) -> bytes:
    """The bytes of --saml-response-file (a path, or `-` for stdin). Raises UsageError, and
    SamlError as soon as more than the largest acceptable response has been read (so
    `/dev/zero` or a huge file costs neither memory nor time).

    Bytes, not text: an XML document may declare its own encoding (UTF-16, say).
    """
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_SAML_INPUT_BYTES + 1)
        else:
            with Path(source).open("rb") as handle:
                data = handle.read(MAX_SAML_INPUT_BYTES + 1)
    except OSError as exc:
        raise UsageError(
            f"cannot read the SAML response file {source}: {exc.strerror or exc}"
        ) from exc
    if len(data) > MAX_SAML_INPUT_BYTES:
        raise SamlError(saml_too_large())
    return data


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


def replay_session(
    opts: RunOptions, settings: Settings, idp: IdentityProvider, router: Router
) -> Assertion | None:
    """The assertion from the IdP's kept session, without a browser; None to open one.

    Only for the user who signed in last at this IdP's host (the keyring is shared by every
    config directory of the OS user); off with --no-replay, whenever the person asked to
    see the browser, and after the IdP refused the stored password (a replay would leave the
    old password in the keyring and automatic refreshes stopped: the person signs in anew).
    """
    if not opts.replay or opts.use_browser or opts.show_browser or not idp.username:
        return None
    if settings.password_refused(idp.nickname):
        return None
    with timing.span("replay"):
        session = sessions.recall(settings, idp.nickname)
        if session is None or not session.fits(idp.url, idp.username):
            return None
        try:
            return parse_saml_response(replay.replay(idp.url, session, route=_proxy_url(router)))
        except (replay.NotReplayable, SamlError) as exc:
            log.info("the kept IdP session gave no assertion (%s): opening the browser", exc)
            return None


def _proxy_url(router: Router) -> replay.Route:
    """The routing rule as plain-HTTP clients want it: URL -> proxy URL, or None (direct)."""

    def route(url: str) -> str | None:
        proxy = router.route(url)
        return proxy.url_with_credentials() if proxy else None

    return route


def capture_in_browser(url: str, plan: BrowserPlan, prompter: TerminalPrompter) -> Capture:
    """`browser.capture.capture_assertion`, loaded only now: the proxy, the launchers and
    autofill (tens of milliseconds of imports) are for runs that open a browser."""
    from awscli_saml_sso.browser.capture import capture_assertion

    return capture_assertion(url, plan, prompter)


def sign_in_at_idp(
    opts: RunOptions, settings: Settings, ui: Ui
) -> tuple[Assertion, IdentityProvider]:
    """Choose the IdP, reuse its session or capture its assertion in a browser, keep what
    the person typed and the IdP's new session. Returns the assertion and the IdP (as stored
    now).
    """
    idp = choose_idp(opts, settings, ui)
    if opts.browser is None and idp.browser:
        opts = replace(opts, browser=idp.browser)
    if opts.username and idp.username and opts.username.strip() != idp.username:
        # The IdP session in the profile belongs to the previous user: it would sign us in
        # as them without asking. A new user starts with a new profile.
        ui.info(f"Signing in as {opts.username} instead of {idp.username}: new browser profile.")
        clear_profile(settings.browser_profile(idp.nickname), wait=opts.timeout or HEADLESS_TIMEOUT)
        settings.forget_session(idp.nickname)
    router = upstream.router_for(opts, ui, idp)
    if opts.username is None or opts.username.strip() == (idp.username or ""):
        replayed = replay_session(opts, settings, idp, router)
        if replayed is not None:
            ui.info(f"Signed in to {idp.nickname} with its open session (no browser needed).")
            return replayed, idp
    plan = replace(
        browser_plan(opts, settings, idp.nickname),
        router=router,
        upstream_ca=ca_bundle(opts.env, settings.private_dir("proxy") / "upstream-ca.pem"),
        integrated_auth=integrated_auth_hosts(opts.integrated_auth or idp.integrated_auth),
    )
    name = browser_name(plan)
    ui.info(f"Signing in to {idp.nickname} with {name}{'' if plan.visible else ' (headless)'}...")
    prompter = TerminalPrompter(opts, idp, ui)
    capture = capture_in_browser(idp.url, plan, prompter)
    kept = replace(idp, browser=capture.browser)
    if opts.proxy or opts.proxy_pac:  # stored with the IdP: the next run needs no option
        kept = replace(kept, proxy=opts.proxy, proxy_pac=opts.proxy_pac)
    if opts.integrated_auth:
        kept = replace(kept, integrated_auth=opts.integrated_auth)
    remember(settings, kept, prompter, ui)
    upstream.remember_passwords(ui)
    with timing.span("keep session"):
        username = prompter.chosen_username or idp.username
        sessions.keep(
            settings, idp.nickname, sessions.idp_session(idp.url, capture.cookies, username)
        )
    with timing.span("saml parse"):
        return parse_saml_response(capture.saml_response), kept


def check_issuer(settings: Settings, idp: IdentityProvider, issuer: str | None, ui: Ui) -> None:
    """Keep the Issuer of the IdP's first assertion; on a later change, ask (interactive) or
    refuse (--no-prompt): a changed Issuer may be someone else's IdP behind the same URL.
    Raises SamlError.
    """
    if not issuer or issuer == idp.issuer:
        return
    if idp.issuer is not None:
        change = (
            f"The assertion from {idp.nickname} was issued by {issuer!r}, not by "
            f"{idp.issuer!r} as before"
        )
        if not ui.interactive:
            raise SamlError(
                f"{change}; it was refused. If the identity provider really changed, sign in "
                "once in a terminal to accept the new issuer."
            )
        if not ui.confirm(f"{change}. Accept the new issuer?"):
            raise SamlError(f"{change}; it was refused.")
    settings.save_idp(replace(idp, issuer=issuer))


def fetch_assertion_from(opts: RunOptions, settings: Settings, ui: Ui) -> tuple[Assertion, str]:
    """The parsed assertion and where it came from: the IdP's login URL, or `FROM_FILE` for
    --saml-response-file. An IdP's Issuer is checked against the one seen before."""
    if opts.saml_response_file:
        raw = read_saml_response_file(opts.saml_response_file)
        with timing.span("saml parse"):
            return parse_saml_response(raw), FROM_FILE
    opts = upstream.with_stored_proxy(opts, settings)
    assertion, idp = sign_in_at_idp(opts, settings, ui)
    check_issuer(settings, idp, assertion.issuer, ui)
    return assertion, idp.url


def fetch_assertion(opts: RunOptions, settings: Settings, ui: Ui) -> Assertion:
    """The parsed assertion: from --saml-response-file, else signed in at the IdP."""
    return fetch_assertion_from(opts, settings, ui)[0]


# Roles and keys -----------------------------------------------------------------------------
def pick_targets(
    opts: RunOptions, assertion: Assertion, ui: Ui, names: Mapping[str, str] | None = None
) -> dict[str, Role]:
    """Profile name -> role to assume: every role with --all-roles, else the one chosen.

    `names` (account id -> name) label the menu and may name --all-roles profiles.
    """
    if opts.all_roles:
        return all_role_profiles(assertion.roles, opts.profile_name_template, names)
    ask = (lambda prompt: ui.ask(prompt)) if ui.interactive else None
    choice = choose_role(
        assertion.roles, role_arn=opts.role_arn, selection=opts.role_selection, ask=ask, names=names
    )
    role = choice.role
    # The account is named: an assertion from someone else's IdP would show a stranger's.
    label = account_label(role.account_id, names)
    ui.info(f"Using {role.role_arn} (AWS account {label}; {choice.reason}).")
    return {opts.profile: choice.role}


def account_names(
    opts: RunOptions, settings: Settings, assertion: Assertion, ui: Ui
) -> dict[str, str]:
    """Account id -> name: the names set with `accounts set`, the aliases found before and,
    with --discover-account-names, the aliases of accounts not asked yet (one role each).
    """
    path = settings.config_dir / "accounts.json"
    try:
        if not opts.discover_account_names:
            return accounts.known_names(path)
        duration, _ = sts.requested_duration(assertion, sts.MIN_DURATION)

        def keys_for(role: Role) -> Keys:
            target = sts_target(opts, role.role_arn, ui)
            return sts.assume_role_with_saml(
                assertion, role, target, duration=duration, notify=ui.warn
            )

        def alias_of(keys: Keys) -> str | None:
            return accounts.list_alias(keys, sts_target(opts, keys.role_arn, ui).region)

        with timing.span("account names"):
            return accounts.discover(path, assertion.roles, keys_for, alias_of, ui.warn)
    except LocalFileError as exc:
        ui.warn(f"account names are not shown: {exc.message}")
        return {}


def sts_target(opts: RunOptions, role_arn: str, ui: Ui) -> sts.StsTarget:
    """Where STS calls for `role_arn` go (the one region rule, or --endpoint-url) and how:
    the one routing rule's proxy, the CA bundle the AWS CLI would use.
    """
    target = sts.StsTarget(region_for(role_arn, opts.region, opts.env), opts.endpoint_url)
    proxy = upstream.router_for(opts, ui).route(target.url)
    return replace(
        target,
        proxy=proxy.url_with_credentials() if proxy else None,
        ca_bundle=config_files.aws_ca_bundle(opts.env, opts.profile),
    )


#: How many STS calls --all-roles keeps in flight: STS answers in tens of milliseconds and
#: throttles bursts, so a few at a time hide the latency without provoking it.
STS_PARALLEL = 8


def issue_keys(
    opts: RunOptions, assertion: Assertion, targets: Mapping[str, Role], ui: Ui
) -> dict[str, Keys]:
    """Call STS once per target (profile name -> role), several at a time, then chain each to
    --chain-role-arn if asked; the result keeps the targets' order. Raises StsError (the first
    one, in that order).
    """
    duration, note = sts.requested_duration(
        assertion, None if opts.chain_role_arn else opts.duration
    )
    if note:
        ui.warn(note)
    # Where each call goes is decided here, in this thread: the routing rule may ask for a
    # proxy password.
    where = {profile: sts_target(opts, role.role_arn, ui) for profile, role in targets.items()}

    def one(profile: str) -> Keys:
        return sts.assume_role_with_saml(
            assertion, targets[profile], where[profile], duration=duration, notify=ui.warn
        )

    with timing.span("sts"):
        if len(targets) == 1:
            issued = {profile: one(profile) for profile in targets}
        else:
            from concurrent.futures import ThreadPoolExecutor  # only --all-roles pays its import

            with ThreadPoolExecutor(max_workers=STS_PARALLEL) as pool:
                futures = {profile: pool.submit(one, profile) for profile in targets}
                try:
                    issued = {profile: future.result() for profile, future in futures.items()}
                except BaseException:
                    for future in futures.values():
                        future.cancel()
                    raise
    if opts.chain_role_arn:
        issued = {profile: chained(opts, assertion, keys, ui) for profile, keys in issued.items()}
    return issued


def chained(opts: RunOptions, assertion: Assertion, source: Keys, ui: Ui) -> Keys:
    """--chain-role-arn: the second role, assumed with the SAML role's keys (one hour at most)."""
    role_arn = (opts.chain_role_arn or "").strip()
    duration, note = chain.chained_duration(opts.duration)
    if note:
        ui.warn(note)
    ui.info(f"Chaining from {source.role_arn} to {role_arn} (AWS allows at most one hour).")
    with timing.span("sts chain"):
        return chain.assume_role(
            source,
            role_arn,
            sts_target(opts, role_arn, ui),
            name=chain.session_name(assertion.session_name),
            duration=duration,
            external_id=opts.external_id,
        )


def list_roles(opts: RunOptions, settings: Settings, ui: Ui) -> tuple[Role, ...]:
    """The roles the IdP grants (the `roles` command). Raises NoRoleError when there is none."""
    return list_named_roles(opts, settings, ui)[0]


def list_named_roles(
    opts: RunOptions, settings: Settings, ui: Ui
) -> tuple[tuple[Role, ...], dict[str, str]]:
    """The roles the IdP grants and the names of their accounts. Raises NoRoleError."""
    assertion = fetch_assertion(opts, settings, ui)
    if not assertion.roles:
        raise NoRoleError(NO_ROLE)
    return assertion.roles, account_names(opts, settings, assertion, ui)


# Checks before a sign-in ---------------------------------------------------------------------
def _config_settings(opts: RunOptions) -> dict[str, str]:
    return {
        key: value for key, value in (("region", opts.region), ("output", opts.output)) if value
    }


def preflight(opts: RunOptions, settings: Settings, ui: Ui) -> Mapping[str, str] | None:
    """Everything that can be checked before a sign-in, so that a bad profile name or a
    corrupt AWS file fails at once, not after the person typed a password and an MFA code.
    """
    config_files.validate_profile_name(opts.profile)
    chain.check_chain_options(opts.chain_role_arn, opts.external_id)
    if opts.profile_name_template:
        if not opts.all_roles:
            raise UsageError("--profile-name-template names the profiles of --all-roles only")
        accounts.check_template(opts.profile_name_template)
    if opts.chain_role_arn and opts.all_roles:
        raise UsageError("--chain-role-arn chains from one role; it cannot go with --all-roles")
    notes = settings.make_private()
    # The credentials file holds keys: ours is kept 0600; another user's is theirs to fix.
    notes.append(
        make_private(
            config_files.credentials_file(opts.env),
            PRIVATE_FILE_MODE,
            what="the AWS credentials file",
            foreign_ok=True,
        )
        or ""
    )
    for note in filter(None, notes):
        ui.warn(note)
    if opts.region:
        check_region(opts.region)
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
    expires = still_valid(
        opts, preflight(opts, settings, ui), idp_url=requested_idp_url(opts, settings)
    )
    opts = upstream.with_stored_proxy(opts, settings)  # STS follows the IdP's proxy too
    if expires is not None and opts.idp_nickname and settings.password_refused(opts.idp_nickname):
        expires = None  # this run is the one the refused refresh asked for: it signs in
    if expires is not None:
        ui.result(nothing_to_do(opts.profile, expires))
        return LoginResult(profiles={}, skipped=True)
    assertion, source = fetch_assertion_from(opts, settings, ui)
    names = account_names(opts, settings, assertion, ui)
    issued = issue_keys(opts, assertion, pick_targets(opts, assertion, ui, names), ui)
    path = config_files.credentials_file(opts.env)
    config = _config_settings(opts)
    with timing.span("write"):
        if config:  # first: it is the one whose names are stricter (no spaces for botocore)
            config_files.write_configs(
                config_files.config_file(opts.env), {profile: config for profile in issued}
            )
        config_files.write_credentials(path, issued, extra=origin_values(opts.endpoint_url, source))
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
            target = sts_target(opts, keys.role_arn, ui)
            ui.result(f"Signed in as {sts.caller_identity(keys, target)}.")
    except StsError as exc:
        ui.warn(f"The new keys were stored, but checking them failed: {exc.message}")


def forget_idp(settings: Settings, nickname: str) -> IdentityProvider:
    """`idp remove`: the stored entry, its keyring password, and its browser profile (emptied
    under the profile's lock, so a sign-in running on it is never cut short)."""
    removed = settings.remove_idp(nickname)
    clear_profile(settings.config_dir / "browser" / removed.nickname, HEADLESS_TIMEOUT, remove=True)
    return removed


def clean(settings: Settings, ui: Ui, *, yes: bool) -> None:
    """--clean: forget every stored IdP, password and browser profile, after confirmation."""
    if not yes and not ui.confirm(f"Remove everything stored in {settings.config_dir}?"):
        ui.info("Nothing removed.")
        return
    removed = settings.clean()
    ui.result("Removed: " + ", ".join(removed) if removed else "Nothing was stored.")
