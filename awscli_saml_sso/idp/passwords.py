"""Passwords in the OS keyring: opened lazily and with a time limit.

Some keyring back ends stall for minutes when no desktop session is around, so every call
runs under a time limit and a stall reads as "no keyring". Only the operating systems' own
stores count as a keyring (macOS Keychain, Windows Credential Locker, Secret Service,
KWallet): `keyrings.alt`'s file back ends keep the password in a file (plain, base64 or
with a key beside it), which is what this tool promises never to do. Per system:

- Linux: a Secret Service (gnome-keyring, KeePassXC); 10 s is plenty.
- macOS: the Keychain may show a dialog asking the person to allow access (the first time
  a new Python or virtualenv touches an item), so the limit there leaves time to answer it.
- Windows: the Credential Locker holds at most 2,560 bytes per secret (UTF-16, so about
  1,280 characters); a longer password is refused with a sentence before trying.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from awscli_saml_sso.limits import TimeLimitExceeded, call_with_time_limit

log = logging.getLogger(__name__)

KEYRING_SERVICE = "awscli_saml_sso"
#: Where the IdP's session cookies are kept between sign-ins (see idp/sessions.py).
SESSION_SERVICE = "awscli_saml_sso-session"
KEYRING_TIMEOUT = 10.0
#: macOS: long enough for a person to answer the Keychain's "allow access" dialog.
KEYCHAIN_DIALOG_TIMEOUT = 120.0
#: Windows Credential Locker: CRED_MAX_CREDENTIAL_BLOB_SIZE (5 * 512 bytes).
WINDOWS_SECRET_LIMIT = 2560
T = TypeVar("T")


class KeyringUnavailable(Exception):
    """No usable keyring back end; carries the reason to tell the person once."""


def keyring_timeout(platform: str = sys.platform) -> float:
    """How long a keyring call may take on `platform` (a sys.platform value)."""
    return KEYCHAIN_DIALOG_TIMEOUT if platform == "darwin" else KEYRING_TIMEOUT


def too_long_to_store(password: str, platform: str = sys.platform) -> str | None:
    """Why `password` cannot be stored on `platform`'s keyring, or None if it can."""
    if platform != "win32":
        return None
    size = len(password.encode("utf-16-le"))  # the Credential Locker stores UTF-16 text
    if size <= WINDOWS_SECRET_LIMIT:
        return None
    return (
        f"the Windows Credential Locker holds at most {WINDOWS_SECRET_LIMIT} bytes per secret "
        f"and this password takes {size}"
    )


def _with_timeout(action: Callable[[], T]) -> T:
    """Run a keyring call with a time limit so a stalled back end cannot hang the run."""
    timeout = keyring_timeout()
    try:
        return call_with_time_limit(action, timeout, "keyring")
    except TimeLimitExceeded:
        raise KeyringUnavailable(f"the OS keyring did not answer within {timeout:.0f} s") from None
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


def get_password(nickname: str, username: str, *, service: str = KEYRING_SERVICE) -> str | None:
    """The stored password, or None if there is none. Raises KeyringUnavailable."""

    def action() -> str | None:
        found = _backend().get_password(f"{service}:{nickname}", username)
        return None if found is None else str(found)

    return _with_timeout(action)


def set_password(
    nickname: str, username: str, password: str, *, service: str = KEYRING_SERVICE
) -> None:
    """Store the password in the OS keyring. Raises KeyringUnavailable."""
    refused = too_long_to_store(password)
    if refused:
        raise KeyringUnavailable(refused)

    def action() -> None:
        _backend().set_password(f"{service}:{nickname}", username, password)

    _with_timeout(action)


def delete_password(nickname: str, username: str, *, service: str = KEYRING_SERVICE) -> bool:
    """Remove the stored password; False when there was none or no keyring works."""

    def action() -> bool:
        from keyring.errors import PasswordDeleteError

        backend = _backend()
        try:
            backend.delete_password(f"{service}:{nickname}", username)
        except PasswordDeleteError:
            return False
        return True

    try:
        return _with_timeout(action)
    except KeyringUnavailable:
        return False
