"""Keys that are still fresh, for credential_process, exec and env.

Either from the tool's own cache (--idp-nickname with --role-arn) or from a profile of the
credentials file (--profile); in both cases a sign-in happens only when the keys are stale.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from awscli_saml_sso import credentials as creds_file
from awscli_saml_sso.cache import CachedKeys, cache_path, cached_or_refreshed
from awscli_saml_sso.errors import LocalFileError, NeedsPerson, SignInError, UsageError
from awscli_saml_sso.login import (
    LoginOptions,
    Ui,
    fetch_assertion,
    issue_credentials,
    login,
    pick_targets,
)
from awscli_saml_sso.settings import Settings
from awscli_saml_sso.signin import HEADLESS_TIMEOUT
from awscli_saml_sso.sts import PARTITION_REGIONS

log = logging.getLogger(__name__)


def role_keys(opts: LoginOptions, settings: Settings, ui: Ui) -> CachedKeys:
    """Keys for --idp-nickname/--role-arn from the tool's cache, refreshed when near expiry.

    The refresh is a headless sign-in with the stored username and password; concurrent
    callers share one refresh. Raises UsageError when the IdP or role is missing and
    SignInError when the refresh needs a person who cannot be asked.
    """
    if not opts.idp_nickname or not opts.role_arn:
        raise UsageError("--idp-nickname and --role-arn are both needed")
    refresh_opts = replace(opts, use_stored=True, show_browser=False, use_browser=False)

    def refresh() -> creds_file.TemporaryCredentials:
        try:
            assertion = fetch_assertion(refresh_opts, settings, ui)
        except NeedsPerson as exc:
            raise SignInError(
                f"refreshing the credentials needs a person ({exc.message}); run "
                f"`awscli_saml_sso --idp-nickname {opts.idp_nickname} --role-arn {opts.role_arn}` "
                "once in a terminal, then try again"
            ) from exc
        targets = pick_targets(refresh_opts, assertion, ui)
        return issue_credentials(refresh_opts, assertion, targets, ui)[opts.profile]

    path = cache_path(
        settings.config_dir / "cache", opts.idp_nickname, opts.role_arn, opts.endpoint_url
    )
    keys, refreshed = cached_or_refreshed(
        path,
        min_remaining=opts.min_remaining,
        refresh=refresh,
        lock_timeout=(opts.timeout or HEADLESS_TIMEOUT) + 60,
    )
    log.info("credentials %s", "refreshed" if refreshed else "from cache")
    return keys


def profile_keys(opts: LoginOptions, settings: Settings, ui: Ui) -> CachedKeys:
    """Keys of the --profile in the credentials file, signing in first when they are stale."""
    login(opts, settings, ui)
    path = creds_file.credentials_file(opts.env)
    profile = creds_file.read_profile(path, opts.profile) or {}
    try:
        return CachedKeys(
            profile["aws_access_key_id"],
            profile["aws_secret_access_key"],
            profile["aws_session_token"],
            creds_file.parse_timestamp(profile["x_security_token_expires"]),
        )
    except (KeyError, ValueError) as exc:
        raise LocalFileError(
            f"the {opts.profile} profile in {path} lacks the keys this tool writes"
        ) from exc


def region_of(opts: LoginOptions) -> str:
    """--region, else the caller's AWS_REGION / AWS_DEFAULT_REGION, else the role's partition's."""
    chosen = opts.region or opts.env.get("AWS_REGION") or opts.env.get("AWS_DEFAULT_REGION")
    if chosen:
        return chosen
    parts = (opts.role_arn or "").split(":")
    return PARTITION_REGIONS.get(parts[1] if len(parts) > 2 else "", "us-east-1")
