"""Which identity provider to sign in with: by nickname, added with --idp-url, or from a menu."""

from __future__ import annotations

from awscli_saml_sso.errors import UsageError
from awscli_saml_sso.idp.store import Settings, check_nickname, check_url
from awscli_saml_sso.model import IdentityProvider, RunOptions, Ui, require_interactive


def store_idp_url(opts: RunOptions, settings: Settings) -> IdentityProvider | None:
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


def _add_idp(settings: Settings, ui: Ui, nickname: str | None = None) -> IdentityProvider:
    require_interactive(ui, "a new identity provider's nickname and URL")
    # ask() outside the try: a closed stdin is a UsageError too, and must end the loop.
    while nickname is None:
        answer = ui.ask("Nickname for the new identity provider").strip()
        try:
            nickname = check_nickname(answer)
        except UsageError as exc:
            ui.warn(exc.message)
    while True:
        answer = ui.ask(f"IdP-initiated login URL of {nickname}")
        try:
            url = check_url(answer)
            break
        except UsageError as exc:
            ui.warn(exc.message)
    return settings.save_idp(IdentityProvider(nickname=nickname, url=url))


def choose_idp(opts: RunOptions, settings: Settings, ui: Ui) -> IdentityProvider:
    """The IdP to sign in with: by nickname, added with --idp-url, or from the stored list."""
    added = store_idp_url(opts, settings)
    if added is not None:
        return added
    idps = settings.load_idps()
    if opts.idp_nickname:
        check_nickname(opts.idp_nickname)
        if opts.idp_nickname in idps:
            return idps[opts.idp_nickname]
        if not ui.interactive:
            known = ", ".join(idps) or "none"
            raise UsageError(
                f"no identity provider is stored under the nickname {opts.idp_nickname!r} "
                f"(stored: {known}); add it with --idp-url"
            )
        if not ui.confirm(f"No identity provider is called {opts.idp_nickname!r}. Add it now?"):
            raise UsageError(f"unknown identity provider nickname {opts.idp_nickname!r}")
        return _add_idp(settings, ui, opts.idp_nickname)
    if not idps:
        ui.info("No identity provider is stored yet; let us add one.")
        return _add_idp(settings, ui)
    require_interactive(ui, "the choice of identity provider (--idp-nickname)")
    names = list(idps)
    menu = "\n".join(f"  [{i}] {name}  ({idps[name].url})" for i, name in enumerate(names))
    while True:
        answer = ui.ask(f"Identity providers:\n{menu}\n  [+] add a new one\nSelection").strip()
        if answer == "+":
            return _add_idp(settings, ui)
        if answer.isdigit() and int(answer) < len(names):
            return idps[names[int(answer)]]
        if answer in idps:
            return idps[answer]
        ui.warn(f"Please answer with a number from 0 to {len(names) - 1}, a nickname, or +.")
