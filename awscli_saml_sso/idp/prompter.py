"""What the form-filling loop types, and where it comes from: options, the keyring, the
environment or the person at the terminal; and what is kept after a successful sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from awscli_saml_sso.idp import passwords
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import (
    IdentityProvider,
    RunOptions,
    Ui,
    origin_of,
    require_interactive,
)


@dataclass
class TerminalPrompter:
    """Answers autofill's questions from options, the keyring, the environment or the terminal.

    A typed password never shows in `repr`.
    """

    opts: RunOptions
    idp: IdentityProvider
    ui: Ui = field(repr=False)
    typed_password: str | None = field(default=None, repr=False)
    chosen_username: str | None = None
    _mfa_used: bool = False
    new_origins: list[str] = field(default_factory=list)  # approved in this run

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
        if self.typed_password is not None:
            return self.typed_password  # the same sign-in, begun again (a hand-over)
        user = self.username()
        if self.opts.use_stored or not self.ui.interactive:
            try:
                stored = passwords.get_password(self.idp.nickname, user)
            except passwords.KeyringUnavailable as exc:
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

    def can_give_code(self) -> bool:
        """Whether mfa_code() can answer: a code was given, or a person can type one."""
        given = self.opts.mfa_code or self.opts.env.get("ASS_MFA_CODE")
        return bool(given and not self._mfa_used) or self.ui.interactive

    def info(self, message: str) -> None:
        self.ui.info(message)

    def approve_origin(self, origin: str) -> bool:
        """Whether the username, password and codes may be typed into a page of `origin`.

        The login URL's origin and the origins approved before are; another one is asked
        about once, naming it, and kept for this IdP after a successful sign-in. Nobody to
        ask (--no-prompt): no.
        """
        if origin in self.idp.approved_origins or origin in self.new_origins:
            return True
        if not origin or not self.ui.interactive:
            return False
        home = origin_of(self.idp.url)
        if not self.ui.confirm(
            f"The sign-in at {self.idp.nickname} went on from {home} to {origin}. "
            f"Type your username, password and codes for {self.idp.nickname} there?"
        ):
            return False
        self.new_origins.append(origin)
        return True


def remember(settings: Settings, idp: IdentityProvider, prompter: TerminalPrompter, ui: Ui) -> None:
    """After a successful capture, keep the username, browser and a typed password, and
    forget an earlier failed refresh (automatic refreshes may go on)."""
    settings.save_idp(
        replace(
            idp,
            username=prompter.chosen_username or idp.username,
            origins=(*idp.origins, *prompter.new_origins),
        )
    )
    settings.clear_refresh_failure(idp.nickname)
    if prompter.typed_password and prompter.chosen_username:
        try:
            passwords.set_password(idp.nickname, prompter.chosen_username, prompter.typed_password)
            ui.info("Password saved in the OS keyring for --use-stored.")
        except passwords.KeyringUnavailable as exc:
            ui.warn(f"The password was not saved: {exc}. You will be asked for it next time.")
