"""The console script: answers the calls that must be quick, then hands over to the command line.

The AWS CLI starts `awscli_saml_sso credential-process` before every command it runs with a
profile configured by `configure-profile`, often several at a time; people rerun a sign-in
out of habit. While the cached keys are fresh, the first is answered here from the cache
file; while the profile is still valid, the second says so; so is `--version`. These answers
use the standard library and the package's light modules (paths, timestamps, errors, text,
files, aws.config_files, aws.validity): no click, no third-party library. Anything else, and
any call whose answer is not certain here (an option this path does not know, a log level that
asks for messages, a file that is missing, stale, corrupt or not private, a refused password
on record), goes to `cli.main` unchanged, which decides everything again by itself.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from awscli_saml_sso import __version__
from awscli_saml_sso.aws import config_files
from awscli_saml_sso.aws.validity import check_region, kept_until, nothing_to_do
from awscli_saml_sso.errors import AssError, UsageError
from awscli_saml_sso.paths import (
    DEFAULT_MIN_REMAINING,
    LOGIN_MIN_REMAINING,
    NICKNAME,
    cache_path,
    config_dir,
    fresh_keys,
    refresh_failure_path,
)

#: credential-process options whose values this path understands (the cache key and window).
_KEY_VALUES = (
    "--idp-nickname",
    "--role-arn",
    "--chain-role-arn",
    "--external-id",
    "--endpoint-url",
    "--username",
    "--min-remaining",
    "--profile",
)
#: Options of a sign-in run whose values this path understands ("still valid?").
_RUN_VALUES = (
    *("--idp-nickname", "--idp-url", "--username", "--role-arn", "--region"),
    *("--endpoint-url", "--min-remaining", "--profile"),
)
#: Flags that change nothing about a quick answer (they matter to a sign-in only).
_FLAGS = ("--replay", "--no-replay", "--use-stored", "--no-prompt")
#: Log levels at which a quick answer prints no message.
_QUIET = ("", "WARNING", "ERROR", "CRITICAL")


def _options(words: Sequence[str], known: Sequence[str]) -> dict[str, str] | None:
    """`--name value` and `--name=value` pairs of `known` names (and _FLAGS), or None for
    anything else."""
    found: dict[str, str] = {}
    position = 0
    while position < len(words):
        word = words[position]
        name, equals, value = word.partition("=")
        if name in _FLAGS and not equals:
            position += 1
            continue
        if name not in known or name in found:
            return None
        if not equals:
            if position + 1 >= len(words) or words[position + 1].startswith("-"):
                return None  # a missing value: the command line words the error
            value = words[position + 1]
            position += 1
        found[name] = value
        position += 1
    return found


def _private(path: Path, *, directory: bool) -> bool:
    """Whether `path` is ours and closed to others, as `files.make_private` leaves it (POSIX)."""
    try:
        status = path.stat()
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(status.st_mode) if directory else stat.S_ISREG(status.st_mode)
    if not hasattr(os, "getuid"):  # Windows: the profile directory's ACL protects it
        return kind_ok
    return kind_ok and status.st_uid == os.getuid() and not status.st_mode & 0o077


def _stored_idp(directory: Path, nickname: str) -> Mapping[str, object] | None:
    """The raw idps.json entry for `nickname`, {} when there is none, None when idps.json
    cannot be read (the command line says why). Only compared, never trusted."""
    try:
        entries = json.loads((directory / "idps.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, dict) and entry.get("nickname") == nickname:
            return entry
    return {}


def _private_tree(directory: Path) -> bool:
    """Whether the tool's directory and what it keeps there are private (or it does not exist
    yet): else the command line tightens them and says so."""
    if not directory.exists():
        return True
    if not _private(directory, directory=True):
        return False
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return False
    return all(
        entry.is_symlink() or _private(Path(entry.path), directory=entry.is_dir())
        for entry in entries
    )


def cached_credential_process(words: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The JSON a `credential-process WORDS` call prints when its cached keys are fresh and
    nothing else could be said; None when the command line must decide."""
    options = _options(words, _KEY_VALUES)
    if options is None or env.get("ASS_LOG_LEVEL", "").upper() not in _QUIET:
        return None
    nickname, role_arn = options.get("--idp-nickname"), options.get("--role-arn")
    if not nickname or not role_arn or not NICKNAME.fullmatch(nickname):
        return None
    if "--external-id" in options and "--chain-role-arn" not in options:
        return None  # a usage error, which the command line words
    minimum = options.get("--min-remaining", str(DEFAULT_MIN_REMAINING))
    if not minimum.isdigit() or not minimum.isascii():
        return None
    directory = config_dir(env)
    if not _private_tree(directory):
        return None
    stored = _stored_idp(directory, nickname)
    if stored is None:
        return None
    stored_username, idp_url = stored.get("username"), stored.get("url")
    username = options.get("--username") or env.get("ASS_USERNAME") or stored_username
    chain_role_arn = options.get("--chain-role-arn")
    path = cache_path(
        directory / "cache",
        nickname,
        role_arn,
        options.get("--endpoint-url", env.get("ASS_ENDPOINT_URL")),
        chain=(chain_role_arn.strip(), options.get("--external-id", "")) if chain_role_arn else (),
        username=(username if isinstance(username, str) else "").strip(),
        idp_url=(idp_url if isinstance(idp_url, str) else "").strip(),
    )
    if not _private(path, directory=False):
        return None
    keys = fresh_keys(path, int(minimum))
    if keys is None:
        return None
    return json.dumps({"Version": 1, **keys}) + "\n"


def still_valid_run(words: Sequence[str], env: Mapping[str, str]) -> str | None:
    """What a sign-in run (no subcommand) prints when the profile it would write is still
    valid and nothing else could be said; None when the command line must decide."""
    options = _options(words, _RUN_VALUES)
    if options is None or env.get("ASS_LOG_LEVEL", "").upper() not in _QUIET:
        return None
    nickname = options.get("--idp-nickname")
    minimum = options.get("--min-remaining", str(LOGIN_MIN_REMAINING))
    profile_name = options.get("--profile", "saml")
    if nickname is not None and not NICKNAME.fullmatch(nickname):
        return None
    if not minimum.isdigit() or not minimum.isascii():
        return None
    try:
        config_files.validate_profile_name(profile_name)
    except UsageError:
        return None
    directory = config_dir(env)
    if not _private_tree(directory):
        return None
    idp_url = None
    if nickname is not None:
        if refresh_failure_path(directory, nickname).exists():
            return None  # a refused password: this run must sign in (see idp.store)
        stored = _stored_idp(directory, nickname)
        if stored is None:
            return None
        url = stored.get("url")
        idp_url = url.strip() if isinstance(url, str) else None
    if "--idp-url" in options and (nickname is None or options["--idp-url"].strip() != idp_url):
        return None  # the command line stores the new URL (or says what is missing)
    credentials = config_files.credentials_file(env)
    if not _private(credentials, directory=False):
        return None
    region = options.get("--region")
    try:
        if region is not None:  # checked and read as the command line does, never written
            check_region(region)
            config_files.check_config_settings(profile_name, {"region": region})
            config_files.read_profile(config_files.config_file(env), profile_name)
        profile = config_files.read_profile(credentials, profile_name)
    except AssError:
        return None
    expires = kept_until(
        profile,
        role_arn=options.get("--role-arn"),
        endpoint_url=options.get("--endpoint-url", env.get("ASS_ENDPOINT_URL")),
        idp_url=idp_url,
        min_remaining=int(minimum),
    )
    return None if expires is None else nothing_to_do(profile_name, expires) + "\n"


def quick_answer(words: Sequence[str], env: Mapping[str, str]) -> str | None:
    """What to print for `awscli_saml_sso WORDS` without the command line, or None."""
    if list(words) == ["--version"]:
        return f"awscli_saml_sso, version {__version__}\n"
    if words and words[0] == "credential-process":
        return cached_credential_process(words[1:], env)
    if not words or words[0].startswith("--"):
        return still_valid_run(words, env)
    return None


def main() -> None:
    """Entry point of the `awscli_saml_sso` script (and of `python -m awscli_saml_sso`)."""
    try:
        answer = quick_answer(sys.argv[1:], os.environ)
    except Exception:  # anything unforeseen here: the command line decides and words it
        answer = None
    if answer is not None:
        sys.stdout.write(answer)
        sys.stdout.flush()
        return
    # Deferred (tests/unit/test_layout.py, DEFERRED): the command line, only when needed.
    from awscli_saml_sso import cli

    cli.main()
