"""Keys for credential_process, exec and env: a 0600 cache per IdP, role and endpoint.

The AWS CLI starts `awscli_saml_sso credential-process` before every command and often many
at a time. The cached path reads one small JSON file and imports nothing heavy. A refresh
takes a cross-process lock and re-reads the cache once it holds it, so N callers that find
the cache stale at the same moment cause exactly one sign-in and all get its result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from awscli_saml_sso.aws import config_files
from awscli_saml_sso.aws.chain import check_chain_options
from awscli_saml_sso.aws.credential_server import REMOVED as SERVER_REMOVED
from awscli_saml_sso.aws.credential_server import CredentialServer
from awscli_saml_sso.aws.shell import child_environment, variables
from awscli_saml_sso.browser.capture import HEADLESS_TIMEOUT
from awscli_saml_sso.errors import LocalFileError, NeedsPerson, SignInError, UsageError
from awscli_saml_sso.files import atomic_write, ensure_private_dir, locked
from awscli_saml_sso.flow import fetch_assertion, issue_keys, login, pick_targets
from awscli_saml_sso.idp import upstream
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import Keys, RunOptions, Ui, parse_timestamp, region_for

log = logging.getLogger(__name__)

#: The AWS CLI refreshes credential_process keys 15 minutes before they expire; handing out
#: keys with less left would make it call us again on every command.
DEFAULT_MIN_REMAINING = 900


def cache_path(
    cache_dir: Path,
    nickname: str,
    role_arn: str,
    endpoint_url: str | None,
    *,
    chain: Sequence[str] = (),
) -> Path:
    """The cache file for one IdP, role (with the roles chained from it) and STS endpoint:
    different endpoints or chains never mix.
    """
    # Without a chain the key is what it always was, so existing caches stay valid.
    key = "\n".join([role_arn, endpoint_url or "", *chain])
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir / f"{nickname}-{digest}.json"


def load(path: Path, min_remaining: int, now: datetime | None = None) -> Keys | None:
    """The cached keys if they have more than `min_remaining` seconds left, else None.

    A missing, unreadable or malformed cache is treated as empty: it is only a cache.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        keys = Keys(
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


def save(path: Path, keys: Keys) -> None:
    """Write the cache atomically with mode 0600 in a 0700 directory."""
    ensure_private_dir(path.parent)
    atomic_write(path, json.dumps(keys.process_json()).encode("utf-8"))


def cached_or_refreshed(
    path: Path,
    *,
    min_remaining: int,
    refresh: Callable[[], Keys],
    lock_timeout: float,
) -> tuple[Keys, bool]:
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
        keys = refresh()
        save(path, keys)
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
    refresh_opts = replace(opts, use_stored=True, show_browser=False, use_browser=False)
    refresh_opts = upstream.with_stored_proxy(refresh_opts, settings)

    def refresh() -> Keys:
        try:
            assertion = fetch_assertion(refresh_opts, settings, ui)
        except NeedsPerson as exc:
            raise SignInError(
                f"refreshing the credentials needs a person ({exc.message}); run "
                f"`awscli_saml_sso --idp-nickname {opts.idp_nickname} --role-arn {opts.role_arn}` "
                "once in a terminal, then try again"
            ) from exc
        targets = pick_targets(refresh_opts, assertion, ui)
        return issue_keys(refresh_opts, assertion, targets, ui)[opts.profile]

    path = cache_path(
        settings.config_dir / "cache",
        opts.idp_nickname,
        opts.role_arn,
        opts.endpoint_url,
        chain=chain_key(opts),
    )
    keys, refreshed = cached_or_refreshed(
        path,
        min_remaining=opts.min_remaining,
        refresh=refresh,
        lock_timeout=(opts.timeout or HEADLESS_TIMEOUT) + 60,
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
