"""The persistent browser profile of one identity provider: private, one run at a time."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from awscli_saml_sso.errors import LocalFileError, SignInError
from awscli_saml_sso.files import atomic_write, ensure_private_dir, locked, remove_file, remove_tree

logger = logging.getLogger(__name__)

# Chromium's markers that a profile is in use; left behind when a browser crashed.
_SINGLETON_FILES = ("SingletonLock", "SingletonSocket", "SingletonCookie")
_PROFILE_LOCK_NAME = "awscli_saml_sso"  # files.locked() adds ".lock"


@contextlib.contextmanager
def locked_profile(profile_dir: Path, wait: float) -> Iterator[None]:
    """Hold an exclusive lock on the profile for the browser's lifetime.

    A second run on the same profile waits at most `wait` seconds (e.g. another
    credential_process refresh at the same IdP), then fails, instead of waiting on Chromium.
    While we hold the lock any Chromium "Singleton" markers are leftovers of a crashed run.
    """
    ensure_private_dir(profile_dir)
    try:
        profile_dir.chmod(0o700)  # it holds the IdP's session cookies, whoever created it
    except OSError as exc:
        raise SignInError(f"Cannot make the browser profile {profile_dir} private: {exc}.") from exc
    hold = contextlib.ExitStack()
    try:
        hold.enter_context(locked(profile_dir / _PROFILE_LOCK_NAME, timeout=wait))
    except LocalFileError:
        raise SignInError(
            f"Another sign-in is using the browser profile {profile_dir}; "
            "wait for it to finish and try again."
        ) from None
    with hold:
        for marker in _SINGLETON_FILES:
            path = profile_dir / marker
            if path.is_symlink() or path.exists():
                logger.debug("removing stale %s from %s", marker, profile_dir)
                path.unlink(missing_ok=True)
        yield


def allow_negotiate(profile_dir: Path) -> None:
    """Let a fresh profile answer the first Negotiate (Kerberos) challenge.

    On Linux, Chromium refuses Negotiate until its `Local State` records that a Negotiate
    header was ever received (it sets that itself on the first challenge, effective only
    afterwards): so the first sign-in of a new profile would fall back to the form. The flag
    is merged into `Local State` before the browser starts; every other setting is kept.
    """
    path = profile_dir / "Local State"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        state = {}
    except (OSError, ValueError):
        logger.debug("unreadable %s; writing a new one", path, exc_info=True)
        state = {}
    if not isinstance(state, dict):
        state = {}
    net = state.setdefault("net", {})
    if not isinstance(net, dict):
        net = state["net"] = {}
    if net.get("received_http_auth_negotiate_headers") is True:
        return
    net["received_http_auth_negotiate_headers"] = True
    atomic_write(path, json.dumps(state).encode("utf-8"))


def clear_profile(profile_dir: Path, wait: float, *, remove: bool = False) -> None:
    """Empty the profile (cookies, sessions, cache) while holding its lock, so a browser of
    another run on it is never pulled from under its feet; with `remove`, the emptied
    directory goes too. Raises SignInError when another run keeps it for `wait` seconds, and
    LocalFileError naming what is left when files stay held (Windows: a closing browser).
    """
    if not profile_dir.is_dir():
        return
    lock_name = f"{_PROFILE_LOCK_NAME}.lock"
    with locked_profile(profile_dir, wait):
        for entry in profile_dir.iterdir():
            if entry.name == lock_name:
                continue
            if entry.is_dir() and not entry.is_symlink():
                remove_tree(entry)
            else:
                remove_file(entry)
    if remove:
        # The lock is released: a run that starts now recreates the profile from nothing.
        (profile_dir / lock_name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            profile_dir.rmdir()
