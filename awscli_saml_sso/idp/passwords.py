"""Passwords in the OS keyring: opened lazily and with a time limit.

Some keyring back ends stall for minutes when no desktop session is around, so every call
runs under a time limit and a stall reads as "no keyring".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from awscli_saml_sso.limits import TimeLimitExceeded, call_with_time_limit

log = logging.getLogger(__name__)

KEYRING_SERVICE = "awscli_saml_sso"
#: Where the IdP's session cookies are kept between sign-ins (see idp/sessions.py).
SESSION_SERVICE = "awscli_saml_sso-session"
KEYRING_TIMEOUT = 10.0
T = TypeVar("T")


class KeyringUnavailable(Exception):
    """No usable keyring back end; carries the reason to tell the person once."""


def _with_timeout(action: Callable[[], T]) -> T:
    """Run a keyring call with a time limit so a stalled back end cannot hang the run."""
    try:
        return call_with_time_limit(action, KEYRING_TIMEOUT, "keyring")
    except TimeLimitExceeded:
        raise KeyringUnavailable(
            f"the OS keyring did not answer within {KEYRING_TIMEOUT:.0f} s"
        ) from None
    except KeyringUnavailable:
        raise
    except Exception as exc:
        log.debug("keyring call failed", exc_info=exc)
        raise KeyringUnavailable(f"the OS keyring is not usable here ({exc})") from exc


def _keyring_backend_check() -> None:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
        raise KeyringUnavailable(
            "no OS keyring back end is available (on Linux, install and unlock a Secret "
            "Service such as gnome-keyring or KeePassXC)"
        )


def get_password(nickname: str, username: str, *, service: str = KEYRING_SERVICE) -> str | None:
    """The stored password, or None if there is none. Raises KeyringUnavailable."""

    def action() -> str | None:
        import keyring

        _keyring_backend_check()
        return keyring.get_password(f"{service}:{nickname}", username)

    return _with_timeout(action)


def set_password(
    nickname: str, username: str, password: str, *, service: str = KEYRING_SERVICE
) -> None:
    """Store the password in the OS keyring. Raises KeyringUnavailable."""

    def action() -> None:
        import keyring

        _keyring_backend_check()
        keyring.set_password(f"{service}:{nickname}", username, password)

    _with_timeout(action)


def delete_password(nickname: str, username: str, *, service: str = KEYRING_SERVICE) -> bool:
    """Remove the stored password; False when there was none or no keyring works."""

    def action() -> bool:
        import keyring
        from keyring.errors import PasswordDeleteError

        _keyring_backend_check()
        try:
            keyring.delete_password(f"{service}:{nickname}", username)
        except PasswordDeleteError:
            return False
        return True

    try:
        return _with_timeout(action)
    except KeyringUnavailable:
        return False
