"""Passwords in the OS keyring: opened lazily and with a time limit.

Some keyring back ends stall for minutes when no desktop session is around, so every call
runs under a time limit and a stall reads as "no keyring". Only the operating systems' own
stores count as a keyring (macOS Keychain, Windows Credential Locker, Secret Service,
KWallet): `keyrings.alt`'s file back ends keep the password in a file (plain, base64 or
with a key beside it), which is what this tool promises never to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from awscli_saml_sso.limits import TimeLimitExceeded, call_with_time_limit

log = logging.getLogger(__name__)

KEYRING_SERVICE = "awscli_saml_sso"
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


#: The modules of keyring's back ends that store in the operating system's own keyring.
OS_BACKENDS = frozenset(
    {
        "keyring.backends.macOS",
        "keyring.backends.Windows",
        "keyring.backends.SecretService",
        "keyring.backends.libsecret",
        "keyring.backends.kwallet",
    }
)


def os_keyring(backend: Any) -> Any | None:
    """The OS keyring to use for keyring's chosen `backend`: the back end itself when it is
    one, the first (highest-priority) OS keyring among a chainer's back ends, else None.

    A chainer reads from every back end it chains, a plaintext file among them included, so
    its OS member is used directly.
    """
    module = type(backend).__module__
    if module == "keyring.backends.chainer":
        for member in getattr(backend, "backends", []):
            chosen = os_keyring(member)
            if chosen is not None:
                return chosen
        return None
    if module not in OS_BACKENDS and not module.startswith(tuple(f"{m}." for m in OS_BACKENDS)):
        return None
    try:
        usable = getattr(backend, "priority", 1) > 0
    except Exception:  # a back end says "not here" by raising from priority (no D-Bus...)
        return None
    return backend if usable else None


def _backend() -> Any:
    """The OS keyring back end to use; raises KeyringUnavailable when there is none."""
    import keyring

    chosen = keyring.get_keyring()
    backend = os_keyring(chosen)
    if backend is None:
        name = f"{type(chosen).__module__}.{type(chosen).__name__}"
        raise KeyringUnavailable(
            f"no OS keyring is available ({name} is not one: it would keep the password in a "
            "file or not at all; on Linux, install and unlock a Secret Service such as "
            "gnome-keyring or KeePassXC)"
        )
    return backend


def get_password(nickname: str, username: str) -> str | None:
    """The stored password, or None if there is none. Raises KeyringUnavailable."""

    def action() -> str | None:
        found = _backend().get_password(f"{KEYRING_SERVICE}:{nickname}", username)
        return None if found is None else str(found)

    return _with_timeout(action)


def set_password(nickname: str, username: str, password: str) -> None:
    """Store the password in the OS keyring. Raises KeyringUnavailable."""

    def action() -> None:
        _backend().set_password(f"{KEYRING_SERVICE}:{nickname}", username, password)

    _with_timeout(action)


def delete_password(nickname: str, username: str) -> bool:
    """Remove the stored password; False when there was none or no keyring works."""

    def action() -> bool:
        from keyring.errors import PasswordDeleteError

        backend = _backend()
        try:
            backend.delete_password(f"{KEYRING_SERVICE}:{nickname}", username)
        except PasswordDeleteError:
            return False
        return True

    try:
        return _with_timeout(action)
    except KeyringUnavailable:
        return False
