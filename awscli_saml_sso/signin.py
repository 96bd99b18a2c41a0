"""Browser sign-in: pick the identity provider, then proxy + browser + autofill until the capture.

Imported only when a browser is needed; selenium and mitmproxy load inside `browser_sign_in`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from awscli_saml_sso import settings as store
from awscli_saml_sso.errors import UsageError
from awscli_saml_sso.login import LoginOptions, Ui, require_interactive, store_idp_url
from awscli_saml_sso.settings import IdentityProvider, Settings, check_nickname, check_url

if TYPE_CHECKING:
    from awscli_saml_sso.proxy import CaptureProxy

log = logging.getLogger(__name__)

HEADLESS_TIMEOUT = 120.0
VISIBLE_TIMEOUT = 300.0


# Choosing the identity provider --------------------------------------------------------------
def _add_idp(settings: Settings, ui: Ui, nickname: str | None = None) -> IdentityProvider:
    require_interactive(ui, "a new identity provider's nickname and URL")
    while nickname is None:
        try:
            nickname = check_nickname(ui.ask("Nickname for the new identity provider").strip())
        except UsageError as exc:
            ui.warn(exc.message)
    while True:
        try:
            url = check_url(ui.ask(f"IdP-initiated login URL of {nickname}"))
            break
        except UsageError as exc:
            ui.warn(exc.message)
    return settings.save_idp(IdentityProvider(nickname=nickname, url=url))


def choose_idp(opts: LoginOptions, settings: Settings, ui: Ui) -> IdentityProvider:
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


# Answers for the login forms -----------------------------------------------------------------
@dataclass
class TerminalPrompter:
    """Answers autofill's questions from options, the keyring, the environment or the terminal."""

    opts: LoginOptions
    idp: IdentityProvider
    ui: Ui
    typed_password: str | None = None
    chosen_username: str | None = None
    _mfa_used: bool = False

    def username(self) -> str:
        if self.chosen_username is None and self.opts.username:
            self.chosen_username = self.opts.username.strip()
        if self.chosen_username is None:
            stored = self.idp.username
            if stored and (self.opts.use_stored or not self.ui.interactive):
                self.chosen_username = stored
            else:
                require_interactive(self.ui, f"the username for {self.idp.nickname}")
                self.chosen_username = self.ui.ask("Username", default=stored).strip()
        return self.chosen_username

    def password(self) -> str:
        supplied = self.opts.env.get("ASS_PASSWORD")
        if supplied:
            return supplied
        user = self.username()
        if self.opts.use_stored or not self.ui.interactive:
            try:
                stored = store.get_password(self.idp.nickname, user)
            except store.KeyringUnavailable as exc:
                self.ui.warn(f"Cannot read the stored password: {exc}; asking for it instead.")
                stored = None
            if stored:
                return stored
        require_interactive(self.ui, f"the password of {user} at {self.idp.nickname}")
        self.typed_password = self.ui.ask(f"Password for {user}", hide=True)
        return self.typed_password

    def mfa_code(self, hint: str) -> str:
        given = self.opts.mfa_code or self.opts.env.get("ASS_MFA_CODE")
        if given and not self._mfa_used:
            self._mfa_used = True  # a code is good once; a second request needs a fresh one
            return given.strip()
        require_interactive(self.ui, "an MFA code (--mfa-code / ASS_MFA_CODE)")
        if hint:
            self.ui.info(hint)
        return self.ui.ask("MFA code").strip()

    def info(self, message: str) -> None:
        self.ui.info(message)


def _remember(
    settings: Settings, idp: IdentityProvider, prompter: TerminalPrompter, ui: Ui
) -> None:
    """After a successful capture, keep the username, browser and a typed password."""
    settings.save_idp(replace(idp, username=prompter.chosen_username or idp.username))
    if prompter.typed_password and prompter.chosen_username:
        try:
            store.set_password(idp.nickname, prompter.chosen_username, prompter.typed_password)
            ui.info("Password saved in the OS keyring for --use-stored.")
        except store.KeyringUnavailable as exc:
            ui.warn(f"The password was not saved: {exc}. You will be asked for it next time.")


def start_proxy(settings: Settings, lifetimes: contextlib.ExitStack) -> CaptureProxy:
    """Start the capture proxy so that the browser can start at the same time.

    The browser needs the proxy's port and its CA's pin. The port is chosen up front and the
    CA is read (or created, on a first run) before mitmproxy starts, so mitmproxy's import
    and start (~0.4 s) overlap the browser's start-up.
    """
    from awscli_saml_sso.proxy import CaptureProxy, ensure_ca, free_loopback_port

    confdir = settings.private_dir("proxy")
    pin = ensure_ca(confdir)
    proxy = CaptureProxy(confdir, port=free_loopback_port())
    lifetimes.callback(proxy.stop)
    proxy.begin()
    proxy.ca_spki_sha256 = pin
    return proxy


def browser_sign_in(opts: LoginOptions, settings: Settings, ui: Ui) -> str:
    """Sign in through the IdP in a browser and return the captured SAMLResponse."""
    from awscli_saml_sso.autofill import sign_in
    from awscli_saml_sso.browser import open_browser, resolve_browser

    idp = choose_idp(opts, settings, ui)
    visible = opts.show_browser or opts.use_browser
    timeout = opts.timeout or (VISIBLE_TIMEOUT if visible else HEADLESS_TIMEOUT)
    spec = resolve_browser(opts.browser or idp.browser, opts.driver_path)
    prompter = TerminalPrompter(opts, idp, ui)
    profile_dir = settings.browser_profile(idp.nickname)
    if opts.username and idp.username and opts.username.strip() != idp.username:
        # The IdP session in the profile belongs to the previous user: it would sign us in
        # as them without asking. A new user starts with a new profile.
        ui.info(f"Signing in as {opts.username} instead of {idp.username}: new browser profile.")
        shutil.rmtree(profile_dir, ignore_errors=True)
        profile_dir = settings.browser_profile(idp.nickname)
    ui.info(f"Signing in to {idp.nickname} with {spec.name}{'' if visible else ' (headless)'}...")
    with contextlib.ExitStack() as lifetimes:  # unwound last-in first-out: browser, then proxy
        proxy = start_proxy(settings, lifetimes)
        driver = lifetimes.enter_context(
            open_browser(
                spec,
                headless=not visible,
                profile_dir=profile_dir,
                proxy_port=proxy.requested_port,
                ca_spki_sha256=proxy.ca_spki_sha256,
                profile_wait=timeout,
            )
        )
        proxy.wait_ready()
        saml_response = sign_in(
            driver,
            proxy,
            idp.url,
            prompter=prompter,
            autofill=not opts.use_browser,
            timeout=timeout,
            debug_dir=settings.private_dir("debug") if opts.debug else None,
        )
    _remember(settings, replace(idp, browser=spec.name), prompter, ui)
    return saml_response
