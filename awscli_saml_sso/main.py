"""The console script: answers the calls that must be quick, then hands over to the command line.

The AWS CLI starts `awscli_saml_sso credential-process` before every command it runs with a
profile configured by `configure-profile`, often several at a time. While the cached keys are
fresh, that call is answered here from the cache file with the standard library alone: no
click, none of the package's other modules. So is `--version`. Anything else, and any call
whose answer is not certain here (an option this path does not know, a log level that asks
for messages, a cache that is missing, stale or not private), goes to `cli.main` unchanged,
which decides everything again by itself.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from awscli_saml_sso import __version__
from awscli_saml_sso.paths import (
    DEFAULT_MIN_REMAINING,
    NICKNAME,
    cache_path,
    config_dir,
    fresh_keys,
)

#: credential-process options whose values this path understands (the cache key and window).
_VALUES = (
    "--idp-nickname",
    "--role-arn",
    "--chain-role-arn",
    "--external-id",
    "--endpoint-url",
    "--username",
    "--min-remaining",
    "--profile",
)
#: Flags that change nothing about a cached answer (they matter to a refresh only).
_FLAGS = ("--replay", "--no-replay", "--use-stored", "--no-prompt")
#: Log levels at which a cached answer prints no message.
_QUIET = ("", "WARNING", "ERROR", "CRITICAL")


def _options(words: Sequence[str]) -> dict[str, str] | None:
    """`--name value` and `--name=value` pairs of _VALUES, or None for anything else."""
    found: dict[str, str] = {}
    position = 0
    while position < len(words):
        word = words[position]
        name, equals, value = word.partition("=")
        if name in _FLAGS and not equals:
            position += 1
            continue
        if name not in _VALUES or name in found:
            return None
        if not equals:
            if position + 1 >= len(words):
                return None
            value = words[position + 1]
            position += 1
        found[name] = value
        position += 1
    return found


def _private(path: Path, *, directory: bool) -> bool:
    """Whether `path` is ours and closed to others, as `make_private` leaves it (POSIX)."""
    try:
        status = os.lstat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(status.st_mode) if directory else stat.S_ISREG(status.st_mode)
    if not hasattr(os, "getuid"):  # Windows: the profile directory's ACL protects it
        return kind_ok
    return kind_ok and status.st_uid == os.getuid() and not status.st_mode & 0o077


def _stored_idp(directory: Path, nickname: str) -> Mapping[str, object] | None:
    """The raw idps.json entry for `nickname` (only a cache key is built from it)."""
    try:
        entries = json.loads((directory / "idps.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("nickname") == nickname:
            return entry
    return None


def cached_credential_process(words: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The JSON a `credential-process WORDS` call prints when its cached keys are fresh and
    nothing else could be said; None when the command line must decide."""
    options = _options(words)
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
    if not _private(directory, directory=True) or not _private(directory / "cache", directory=True):
        return None
    stored = _stored_idp(directory, nickname) or {}
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


def quick_answer(words: Sequence[str], env: Mapping[str, str]) -> str | None:
    """What to print for `awscli_saml_sso WORDS` without the command line, or None."""
    if list(words) == ["--version"]:
        return f"awscli_saml_sso, version {__version__}\n"
    if words and words[0] == "credential-process":
        return cached_credential_process(words[1:], env)
    return None


def main() -> None:
    """Entry point of the `awscli_saml_sso` script (and of `python -m awscli_saml_sso`)."""
    answer = quick_answer(sys.argv[1:], os.environ)
    if answer is not None:
        sys.stdout.write(answer)
        sys.stdout.flush()
        return
    # The one deferred import of a project module: the whole command line, when needed.
    from awscli_saml_sso import cli

    cli.main()
