"""The IdP's session cookies, kept between sign-ins as a secret so that the next sign-in can
replay them without a browser (see idp/replay.py).

Only cookies the browser would send to the IdP's own host are kept. They are a secret (whoever
holds them is signed in at the IdP): the OS keyring holds them where it can, else a 0600 file
in the tool's private directory (Windows Credential Locker caps a secret at 2,560 bytes, and
a desktop-less Linux may have no keyring at all).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from awscli_saml_sso.files import atomic_write, ensure_private_dir
from awscli_saml_sso.idp import passwords
from awscli_saml_sso.idp.store import SESSION_KEY, Settings

log = logging.getLogger(__name__)

#: Windows stores a keyring secret as UTF-16 in at most 2,560 bytes; stay below it.
_WINDOWS_KEYRING_CHARS = 1200


@dataclass(frozen=True)
class SessionCookie:
    """One cookie of the IdP's session; the value never shows in `repr`."""

    name: str
    value: str = field(repr=False)
    path: str = "/"
    secure: bool = False
    expires: float | None = None  # seconds since the epoch; None for a session cookie

    def sendable(self, path: str, *, https: bool, loopback: bool, now: float) -> bool:
        """Whether a browser would send this cookie with a request for `path` to its host.

        A `Secure` cookie goes over https, and over http to this machine only: browsers treat
        loopback as a secure context (Keycloak marks its cookies Secure even on localhost).
        """
        if self.expires is not None and self.expires <= now:
            return False
        if self.secure and not (https or loopback):
            return False
        prefix = self.path.rstrip("/")
        return path == prefix or path.startswith(prefix + "/") or not prefix


@dataclass(frozen=True)
class Session:
    """What a browser sign-in left at the IdP: its host, who signed in, the cookies."""

    host: str
    username: str | None
    cookies: tuple[SessionCookie, ...]

    def fits(self, idp_url: str, username: str) -> bool:
        """Whether this session is `username`'s at the host of `idp_url`."""
        host = (urlsplit(idp_url).hostname or "").lower()
        return self.host == host and self.username == username

    def to_json(self) -> str:
        return json.dumps(
            {
                "host": self.host,
                "username": self.username,
                "cookies": [[c.name, c.value, c.path, c.secure, c.expires] for c in self.cookies],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Session:
        """Raises ValueError on anything but what `to_json` writes."""
        try:
            data = json.loads(text)
            cookies = tuple(
                SessionCookie(str(n), str(v), str(p), bool(s), None if e is None else float(e))
                for n, v, p, s, e in data["cookies"]
            )
            username = data["username"]
            return cls(str(data["host"]), None if username is None else str(username), cookies)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("not a kept session") from exc


def _domain_matches(host: str, domain: str) -> bool:
    domain = domain.lower().lstrip(".")
    return host == domain or host.endswith("." + domain)


def idp_session(
    idp_url: str, browser_cookies: Iterable[Mapping[str, Any]], username: str | None
) -> Session | None:
    """The session to keep from a browser's cookies (Selenium or DevTools shape): those the
    browser would send to the IdP-initiated URL's host, nothing of any other site.
    """
    host = (urlsplit(idp_url).hostname or "").lower()
    now = time.time()
    kept: list[SessionCookie] = []
    for cookie in browser_cookies:
        name, value = cookie.get("name"), cookie.get("value")
        domain = str(cookie.get("domain") or "")
        if not name or value is None or not host or not _domain_matches(host, domain):
            continue
        expires = cookie.get("expires", cookie.get("expiry"))
        if cookie.get("session") or not isinstance(expires, (int, float)) or expires <= 0:
            expires = None
        elif expires <= now:
            continue
        kept.append(
            SessionCookie(
                str(name), str(value), str(cookie.get("path") or "/"), bool(cookie.get("secure")),
                None if expires is None else float(expires),
            )
        )  # fmt: skip
    return Session(host, username, tuple(kept)) if kept else None


def _fits_keyring(text: str) -> bool:
    return sys.platform != "win32" or len(text) <= _WINDOWS_KEYRING_CHARS


def keep(settings: Settings, nickname: str, session: Session | None) -> str | None:
    """Keep `session` for the next sign-in (or forget the old one when there is none).

    Returns where it went ("keyring" or the file's path), None when nothing was kept.
    Never raises for a keyring or file problem: a missing session only costs a browser.
    """
    if session is None:
        settings.forget_session(nickname)
        return None
    text = session.to_json()
    path = settings.session_file(nickname)
    if _fits_keyring(text):
        try:
            passwords.set_password(nickname, SESSION_KEY, text, service=passwords.SESSION_SERVICE)
            path.unlink(missing_ok=True)
            return "keyring"
        except (passwords.KeyringUnavailable, OSError) as exc:
            log.debug("session not kept in the keyring: %s", exc)
    try:
        ensure_private_dir(path.parent)
        atomic_write(path, text.encode("utf-8"))
    except Exception as exc:  # a LocalFileError or OSError: only a cache of a secret
        log.debug("session not kept in %s: %s", path, exc)
        return None
    return str(path)


def recall(settings: Settings, nickname: str) -> Session | None:
    """The kept session of an IdP, from its file or the keyring; None when there is none."""
    path = settings.session_file(nickname)
    try:
        text: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except OSError as exc:
        log.debug("cannot read %s: %s", path, exc)
        return None
    if text is None:
        try:
            text = passwords.get_password(nickname, SESSION_KEY, service=passwords.SESSION_SERVICE)
        except passwords.KeyringUnavailable as exc:
            log.debug("no kept session: %s", exc)
            return None
    if not text:
        return None
    try:
        return Session.from_json(text)
    except ValueError:
        log.debug("ignoring an unreadable kept session of %s", nickname)
        return None
