"""The `console` command: the AWS console signed in as a profile's role (signing in first
when its keys are stale), in a browser profile of that AWS profile's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from awscli_saml_sso import keys
from awscli_saml_sso.aws import console
from awscli_saml_sso.browser.console_window import open_console
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import Keys, RunOptions, Ui


@dataclass(frozen=True)
class ConsoleRequest:
    """What `console` was asked for beyond the sign-in: the session length, print or open."""

    duration: int | None
    print_only: bool
    destination: str | None = None


def _window_name(opts: RunOptions) -> str:
    """The name of the browser profile: the AWS profile, or the role for cached role keys."""
    if opts.idp_nickname and opts.role_arn:
        arn = (opts.chain_role_arn or opts.role_arn).strip()
        name = f"{opts.idp_nickname}-{arn.split(':')[4]}-{arn.rsplit('/', 1)[-1]}"
    else:
        name = opts.profile
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]


def source(opts: RunOptions, settings: Settings, ui: Ui) -> Callable[[], Keys]:
    """Where the keys come from, as for exec: the cache for --idp-nickname and --role-arn
    (the whole chain refreshed when stale), else the --profile (signed in when stale).
    """
    if opts.idp_nickname and opts.role_arn:
        return lambda: keys.role_keys(opts, settings, ui)
    return lambda: keys.profile_keys(opts, settings, ui)


def open_aws_console(opts: RunOptions, settings: Settings, ui: Ui, request: ConsoleRequest) -> str:
    """Sign the browser in to the console; returns the URL (printed with --print, else opened).

    Raises UsageError for a bad duration, StsError when the sign-in endpoint refuses.
    """
    duration, note = console.console_duration(request.duration, chained=bool(opts.chain_role_arn))
    console.federation_override(opts.env)  # checked before anyone signs in
    found = source(opts, settings, ui)()
    partition = console.partition_for(found.role_arn or opts.role_arn or "", opts.env)
    if note:
        ui.warn(note)
    token = console.signin_token(found, partition, duration)
    url = console.login_url(token, partition, request.destination)
    if request.print_only:
        return url
    how = open_console(url, settings.private_dir("console", _window_name(opts)))
    ui.info(f"Opened the AWS console ({duration} s session) in {how}.")
    return url
