"""Keys for credential_process, exec and env: a 0600 cache per IdP, role and endpoint.

The AWS CLI starts `awscli_saml_sso credential-process` before every command and often many
at a time. The cached path reads one small JSON file and imports nothing heavy. A refresh
takes a cross-process lock and re-reads the cache once it holds it, so N callers that find
the cache stale at the same moment cause exactly one sign-in and all get its result.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from awscli_saml_sso.aws import config_files
from awscli_saml_sso.aws.chain import check_chain_options
from awscli_saml_sso.aws.credential_server import REMOVED as SERVER_REMOVED
from awscli_saml_sso.aws.credential_server import CredentialServer
from awscli_saml_sso.aws.shell import child_environment, variables
from awscli_saml_sso.browser.plan import HEADLESS_TIMEOUT
from awscli_saml_sso.errors import (
    AssError,
    LocalFileError,
    NeedsPerson,
    SignInError,
    UsageError,
    WrongPassword,
)
from awscli_saml_sso.files import atomic_write, ensure_private_dir, locked
from awscli_saml_sso.flow import fetch_assertion, issue_keys, login, pick_targets
from awscli_saml_sso.idp import upstream
from awscli_saml_sso.idp.store import Settings, record_failure, recorded_failure
from awscli_saml_sso.model import Keys, RunOptions, Ui, region_for
from awscli_saml_sso.paths import cache_path, fresh_keys
from awscli_saml_sso.timestamps import format_timestamp, parse_timestamp

log = logging.getLogger(__name__)


def load(path: Path, min_remaining: int, now: datetime | None = None) -> Keys | None:
    """The cached keys if they have more than the refresh window left, else None (see
    `paths.fresh_keys`)."""
    found = fresh_keys(path, min_remaining, now)
    if found is None:
        return None
    return Keys(
        found["AccessKeyId"],
        found["SecretAccessKey"],
        found["SessionToken"],
        parse_timestamp(found["Expiration"]),
    )


def save(path: Path, keys: Keys, issued: datetime | None = None) -> None:
    """Write the cache atomically with mode 0600 in a 0700 directory, with the time the keys
    were issued (now, unless given) so that their lifetime is known."""
    ensure_private_dir(path.parent)
    document = {
        **keys.process_json(),
        "x_issued": format_timestamp(issued or datetime.now(timezone.utc)),
    }
    atomic_write(path, json.dumps(document).encode("utf-8"))


def cached_or_refreshed(
    path: Path,
    *,
    min_remaining: int,
    refresh: Callable[[], Keys],
    lock_timeout: float,
    failures: Path | None = None,
    advice: str = "",
) -> tuple[Keys, bool]:
    """Keys from the cache, or from one `refresh()` shared by every concurrent caller.

    With `failures` (a file per IdP) the refresh is single-flight per IdP and remembers how
    it failed: callers that waited, and those that come within RETRY_AFTER seconds, fail at
    once with the same sentence; after the IdP refused the password (WrongPassword) no
    automatic refresh is tried again until a sign-in succeeds and removes the record
    (`Settings.clear_refresh_failure`), so a rotated password cannot lock the account out.

    Returns the keys and whether this call did the refresh. Raises whatever `refresh` raises
    (a refused password with `advice` added), and LocalFileError when the lock is held
    longer than `lock_timeout`.
    """
    keys = load(path, min_remaining)
    if keys is not None:
        return keys, False
    ensure_private_dir(path.parent)
    with locked(failures or path, timeout=lock_timeout):
        # Whoever held the lock before us may just have refreshed the cache.
        keys = load(path, min_remaining)
        if keys is not None:
            return keys, False
        if failures is not None:
            recorded = recorded_failure(failures, datetime.now(timezone.utc))
            if recorded is not None:
                raise recorded
        log.info("refreshing %s", path.name)
        try:
            keys = refresh()
        except WrongPassword as exc:
            error = WrongPassword(
                f"the identity provider refused the stored password ({exc.message}); "
                "automatic refreshes stop here so that the account is not locked out"
                + (f": {advice}" if advice else "")
            )
            if failures is not None:
                record_failure(failures, error, wrong_password=True)
            raise error from exc
        except AssError as exc:
            if failures is not None:
                record_failure(failures, exc, wrong_password=False)
            raise
        save(path, keys)
        if failures is not None:
            failures.unlink(missing_ok=True)
        return keys, True


def chain_key(opts: RunOptions) -> tuple[str, ...]:
    """What the cache is keyed by beyond the SAML role: the chained role and its external id."""
    if not opts.chain_role_arn:
        return ()
    return (opts.chain_role_arn.strip(), opts.external_id or "")


def role_keys(opts: RunOptions, settings: Settings, ui: Ui) -> Keys:
    """Keys for --idp-nickname/--role-arn from the tool's cache, refreshed when near expiry.

    The refresh is a headless sign-in with the stored username and password; concurrent
    callers share one refresh. Raises UsageError when the IdP or role is missing and
    SignInError when the refresh needs a person who cannot be asked.
    """
    if not opts.idp_nickname or not opts.role_arn:
        raise UsageError("--idp-nickname and --role-arn are both needed")
    check_chain_options(opts.chain_role_arn, opts.external_id)
    for note in settings.make_private():
        ui.warn(note)
    refresh_opts = replace(opts, use_stored=True, show_browser=False, use_browser=False)
    refresh_opts = upstream.with_stored_proxy(refresh_opts, settings)

    advice = (
        f"run `awscli_saml_sso --idp-nickname {opts.idp_nickname} --role-arn {opts.role_arn}` "
        "once in a terminal, then try again"
    )

    def refresh() -> Keys:
        try:
            assertion = fetch_assertion(refresh_opts, settings, ui)
        except NeedsPerson as exc:
            raise SignInError(
                f"refreshing the credentials needs a person ({exc.message}); {advice}"
            ) from exc
        targets = pick_targets(refresh_opts, assertion, ui)
        return issue_keys(refresh_opts, assertion, targets, ui)[opts.profile]

    stored = settings.load_idps().get(opts.idp_nickname)
    path = cache_path(
        settings.config_dir / "cache",
        opts.idp_nickname,
        opts.role_arn,
        opts.endpoint_url,
        chain=chain_key(opts),
        username=(opts.username or (stored.username if stored else None) or "").strip(),
        idp_url=(opts.idp_url or (stored.url if stored else "")).strip(),
    )
    keys, refreshed = cached_or_refreshed(
        path,
        min_remaining=opts.min_remaining,
        refresh=refresh,
        lock_timeout=(opts.timeout or HEADLESS_TIMEOUT) + 60,
        failures=settings.refresh_failure_file(opts.idp_nickname),
        advice=advice,
    )
    log.info("credentials %s", "refreshed" if refreshed else "from cache")
    return keys


def profile_keys(opts: RunOptions, settings: Settings, ui: Ui) -> Keys:
    """Keys of the --profile in the credentials file, signing in first when they are stale."""
    login(opts, settings, ui)
    path = config_files.credentials_file(opts.env)
    profile = config_files.read_profile(path, opts.profile) or {}
    try:
        return Keys(
            profile["aws_access_key_id"],
            profile["aws_secret_access_key"],
            profile["aws_session_token"],
            parse_timestamp(profile["x_security_token_expires"]),
            profile.get("x_role_arn", ""),
            profile.get("x_principal_arn", ""),
        )
    except (KeyError, ValueError) as exc:
        raise LocalFileError(
            f"the {opts.profile} profile in {path} lacks the keys this tool writes"
        ) from exc


def command_keys(opts: RunOptions, settings: Settings, ui: Ui) -> Keys:
    """Keys for exec and env: the tool's cache with --idp-nickname and --role-arn, else the
    --profile of the credentials file (signing in first when they are stale)."""
    if opts.idp_nickname and opts.role_arn:
        return role_keys(opts, settings, ui)
    return profile_keys(opts, settings, ui)


def region_of(opts: RunOptions) -> str:
    """The region handed to `exec` and `env`: the one region rule for the requested role."""
    return region_for(opts.role_arn, opts.region, opts.env)


def run_with_keys(command: Sequence[str], keys: Keys, region: str) -> int:
    """Run `command` with the keys in its environment; its exit code (128+N for signal N).

    Ctrl-C reaches the child through the terminal; it decides how to stop, and we wait for
    it and pass its exit code on (a no-op handler, unlike SIG_IGN, is not inherited).
    """
    return _run_child(command, child_environment(os.environ, variables(keys, region)))


def run_with_server(
    command: Sequence[str],
    first: Keys,
    fetch: Callable[[], Keys],
    region: str,
    *,
    min_remaining: int,
) -> int:
    """Run `command` with a loopback credential server renewing its keys (`exec --server`)."""
    server = CredentialServer(first, fetch, min_remaining=min_remaining)
    with server.running():
        env = {k: v for k, v in os.environ.items() if k not in SERVER_REMOVED}
        env.update(server.variables(region))
        return _run_child(command, env)


def _run_child(command: Sequence[str], env: dict[str, str]) -> int:
    try:
        child = subprocess.Popen(list(command), env=env)
    except OSError as exc:
        raise UsageError(f"cannot run {command[0]}: {exc.strerror}") from exc
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        returncode = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return returncode if returncode >= 0 else 128 - returncode
