"""Where the tool keeps its state: stored identity providers, and passwords in the OS keyring.

Layout of the config directory (`ASS_CONFIG_DIR`, default `~/.awscli_saml_sso`, mode 0700)::

    idps.json          nickname -> login URL, username, browser, proxy, Kerberos hosts,
                       approved origins, assertion Issuer (no secrets; 0600)
    proxy/             the capture proxy's CA (0600 files)
    browser/<nick>/    one persistent browser profile per IdP (IdP cookies survive runs)
    cache/             credential_process cache, and the record of a failed refresh per
                       IdP (`<nick>.refresh-failed.json`) (0600 files)
    accounts.json      account id -> name, set or discovered (0600)
    console/<profile>/ one browser profile per AWS profile for `console`
    debug/             pages saved on a sign-in timeout with --log-level DEBUG

Passwords live only in the OS keyring (see `passwords`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from awscli_saml_sso.errors import (
    AssError,
    LocalFileError,
    NoRoleError,
    SamlError,
    SignInError,
    StsError,
    UsageError,
    WrongPassword,
)
from awscli_saml_sso.files import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    atomic_write,
    ensure_private_dir,
    locked,
    make_private,
    remove_tree,
)
from awscli_saml_sso.idp.passwords import SESSION_SERVICE, delete_password
from awscli_saml_sso.model import IdentityProvider, is_loopback, origin_of
from awscli_saml_sso.network import DIRECT, Proxy, integrated_auth_hosts, parse_proxy
from awscli_saml_sso.paths import NICKNAME, config_dir, refresh_failure_path
from awscli_saml_sso.timestamps import format_timestamp, parse_timestamp

log = logging.getLogger(__name__)

#: What the tool creates in its config directory; --clean removes exactly these.
OWN_ENTRIES = (
    *("idps.json", "idps.json.lock", "proxy", "browser", "cache", "debug", "sessions"),
    *("accounts.json", "accounts.json.lock", "console"),
)
#: The key of an IdP's kept session (cookies) in the keyring, under SESSION_SERVICE.
SESSION_KEY = "session"


def check_nickname(nickname: str) -> str:
    """Return the nickname if usable as a file name and menu entry, else raise UsageError."""
    if not NICKNAME.fullmatch(nickname):
        raise UsageError(
            f"the nickname {nickname!r} is not valid: use 1 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return nickname


def check_url(url: str) -> str:
    """Return the IdP-initiated login URL if usable, else raise UsageError.

    Plain http is refused except on loopback: the password would cross the network in clear.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not an http(s) URL of an identity provider's login page")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(
            f"{url} uses plain http; your password would travel unencrypted. Use the https URL "
            "(plain http is accepted only for localhost)"
        )
    return url.strip()


#: Fields written only when set, so an idps.json without them stays readable by versions
#: that predate them.
_OPTIONAL_FIELDS = ("proxy", "proxy_pac", "integrated_auth")


def _serialized(idp: IdentityProvider) -> dict[str, object]:
    entry: dict[str, object] = {**asdict(idp), "origins": list(idp.origins)}
    for name in _OPTIONAL_FIELDS:
        if entry.get(name) is None:
            entry.pop(name, None)
    return entry


def _stored_proxy(idp: IdentityProvider) -> Proxy | None:
    if not idp.proxy or idp.proxy == DIRECT:
        return None
    try:
        return parse_proxy(idp.proxy)
    except UsageError:
        return None


def check_origin(origin: str) -> str:
    """Return `origin` if it is a plain web origin where a password may go, else raise
    UsageError (https, or http on this machine only)."""
    if not isinstance(origin, str) or origin_of(origin) != origin:
        raise UsageError(f"{origin!r} is not a web origin (scheme://host[:port])")
    check_url(origin)
    return origin


def _entry(raw: object) -> IdentityProvider:
    """One idps.json entry, every field checked (the file may have been edited by hand)."""
    if not isinstance(raw, dict):
        raise ValueError("an entry is not an object")
    fields = dict(raw)
    known = {"nickname", "url", "username", "browser", "origins", "issuer", *_OPTIONAL_FIELDS}
    unknown = set(fields) - known
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("nickname", "url"):
        if not isinstance(fields.get(name), str):
            raise ValueError(f"{name} must be a string")
    for name in ("username", "browser", "issuer", *_OPTIONAL_FIELDS):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise ValueError(f"{name} must be a string or null")
    origins = fields.get("origins") or []
    if not isinstance(origins, list):
        raise ValueError("origins must be a list")
    try:
        check_nickname(fields["nickname"])
        check_url(fields["url"])
        fields["origins"] = tuple(check_origin(origin) for origin in origins)
    except UsageError as exc:
        raise ValueError(exc.message) from None
    return IdentityProvider(**fields)


#: After a failed refresh (other than a refused password), callers within this many seconds
#: fail at once with the same sentence instead of trying again.
RETRY_AFTER = 60
#: The errors a recorded failure is raised again as (so its exit code stays the same).
_FAILURE_KINDS: dict[str, type[AssError]] = {
    kind.__name__: kind
    for kind in (
        AssError,
        UsageError,
        SignInError,
        WrongPassword,
        SamlError,
        NoRoleError,
        StsError,
        LocalFileError,
    )
}


def recorded_failure(record: Path, now: datetime) -> AssError | None:
    """The error a recorded failed refresh stands for, while it still counts; else None."""
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
        when = parse_timestamp(document["when"])
        message = str(document["message"])
        kind = _FAILURE_KINDS[str(document["kind"])]
        wrong_password = bool(document["wrong_password"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.debug("ignoring unusable refresh record %s", record, exc_info=True)
        return None
    if not wrong_password and now - when > timedelta(seconds=RETRY_AFTER):
        return None
    return kind(message)


def record_failure(record: Path, error: AssError, *, wrong_password: bool) -> None:
    """Keep a failed refresh (private file, written under the caller's lock)."""
    document = {
        "when": format_timestamp(datetime.now(timezone.utc)),
        "message": error.message,
        "kind": type(error).__name__ if type(error) in _FAILURE_KINDS.values() else "AssError",
        "wrong_password": wrong_password,
    }
    try:
        atomic_write(record, json.dumps(document).encode("utf-8"))
    except LocalFileError:
        log.debug("could not record the failed refresh in %s", record, exc_info=True)


class Settings:
    """The tool's config directory and everything stored in it."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return cls(config_dir(os.environ if env is None else env))

    # Paths -----------------------------------------------------------------------------
    @property
    def idps_file(self) -> Path:
        return self.config_dir / "idps.json"

    def private_dir(self, *parts: str) -> Path:
        """A 0700 sub-directory of the config directory, created on first use."""
        ensure_private_dir(self.config_dir)
        return ensure_private_dir(self.config_dir.joinpath(*parts))

    def browser_profile(self, nickname: str) -> Path:
        return self.private_dir("browser", check_nickname(nickname))

    def refresh_failure_file(self, nickname: str) -> Path:
        """Where a failed automatic refresh at this IdP is recorded (see `keys`)."""
        return refresh_failure_path(self.config_dir, check_nickname(nickname))

    def password_refused(self, nickname: str) -> bool:
        """Whether the last automatic refresh at this IdP stopped because the IdP refused the
        stored password (the next sign-in must ask for it)."""
        recorded = recorded_failure(self.refresh_failure_file(nickname), datetime.now(timezone.utc))
        return isinstance(recorded, WrongPassword)

    def clear_refresh_failure(self, nickname: str) -> None:
        """Forget a recorded refresh failure: a sign-in at this IdP has just succeeded."""
        with contextlib.suppress(FileNotFoundError):
            self.refresh_failure_file(nickname).unlink()

    def make_private(self) -> list[str]:
        """Tighten the modes of the tool's directory and what it keeps there (0700 / 0600);
        the sentences to show for what was open. Raises LocalFileError when the directory or
        one of its entries belongs to another user.
        """
        notes = [make_private(self.config_dir, PRIVATE_DIR_MODE, what="the tool's directory")]
        if not self.config_dir.is_dir():
            return []
        for name in OWN_ENTRIES:
            path = self.config_dir / name
            if path.is_symlink():
                continue  # the link's target is the owner's business; it is never followed here
            mode = PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE
            notes.append(make_private(path, mode, what=f"the tool's {name}"))
        return [note for note in notes if note]

    # Stored identity providers ------------------------------------------------------------
    def load_idps(self) -> dict[str, IdentityProvider]:
        """All stored IdPs by nickname, in the order they were added. Raises LocalFileError."""
        try:
            raw = self.idps_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise LocalFileError(f"cannot read {self.idps_file}: {exc.strerror}") from exc
        try:
            entries = json.loads(raw)
            if not isinstance(entries, list):
                raise ValueError("it is not a list of identity providers")
            idps = [_entry(entry) for entry in entries]
        except (ValueError, TypeError) as exc:
            raise LocalFileError(
                f"{self.idps_file} is corrupt ({exc}); fix it or remove it with "
                "`awscli_saml_sso --clean`"
            ) from exc
        return {idp.nickname: idp for idp in idps}

    def _store_idps(self, idps: Mapping[str, IdentityProvider]) -> None:
        ensure_private_dir(self.config_dir)
        data = json.dumps([_serialized(idp) for idp in idps.values()], indent=2) + "\n"
        atomic_write(self.idps_file, data.encode("utf-8"))

    def save_idp(self, idp: IdentityProvider) -> IdentityProvider:
        """Add or update one IdP (keeps fields the new value leaves empty)."""
        check_nickname(idp.nickname)
        check_url(idp.url)
        for origin in idp.origins:
            check_origin(origin)
        ensure_private_dir(self.config_dir)
        with locked(self.idps_file):
            idps = self.load_idps()
            old = idps.get(idp.nickname)
            if old is not None:
                same_idp = old.url == idp.url  # a new URL starts trust from nothing
                idp = replace(
                    idp,
                    username=idp.username or old.username,
                    browser=idp.browser or old.browser,
                    integrated_auth=idp.integrated_auth or old.integrated_auth,
                    origins=tuple(dict.fromkeys((*old.origins, *idp.origins)))
                    if same_idp
                    else idp.origins,
                    issuer=idp.issuer or (old.issuer if same_idp else None),
                )
                if not (idp.proxy or idp.proxy_pac):  # a new proxy setting replaces both
                    idp = replace(idp, proxy=old.proxy, proxy_pac=old.proxy_pac)
            if idp.proxy and idp.proxy.strip().lower() == DIRECT:
                idp = replace(idp, proxy=DIRECT)
            elif idp.proxy:
                idp = replace(idp, proxy=str(parse_proxy(idp.proxy)))  # never a password
            if idp.integrated_auth:
                idp = replace(
                    idp, integrated_auth=",".join(integrated_auth_hosts(idp.integrated_auth))
                )
            idps[idp.nickname] = idp
            self._store_idps(idps)
        return idp

    def remove_idp(self, nickname: str) -> IdentityProvider:
        """Forget one IdP: its entry, its keyring password and its kept session (the browser
        profile is the browser's to remove, under its lock: `flow.forget_idp`)."""
        ensure_private_dir(self.config_dir)
        with locked(self.idps_file):
            idps = self.load_idps()
            idp = idps.pop(nickname, None)
            if idp is None:
                raise UsageError(f"no identity provider is stored under the nickname {nickname!r}")
            self._store_idps(idps)
        if idp.username:
            delete_password(idp.nickname, idp.username)
        self.forget_session(nickname)
        return idp

    def session_file(self, nickname: str) -> Path:
        """Where an IdP's session cookies live when the keyring cannot hold them."""
        return self.config_dir / "sessions" / f"{nickname}.json"

    def forget_session(self, nickname: str) -> bool:
        """Remove an IdP's kept session cookies (keyring entry and file); True if any went."""
        removed = delete_password(nickname, SESSION_KEY, service=SESSION_SERVICE)
        path = self.session_file(nickname)
        if path.exists():
            path.unlink(missing_ok=True)
            removed = True
        return removed

    def clean(self) -> list[str]:
        """Remove every stored password and everything this tool keeps; returns what went.

        Only the tool's own entries are removed (ASS_CONFIG_DIR may point at a directory that
        holds other files), then the directory itself if that left it empty.
        """
        removed: list[str] = []
        try:
            idps = self.load_idps()
        except LocalFileError:
            idps = {}  # a corrupt idps.json is removed below all the same
        for idp in idps.values():
            if idp.username and delete_password(idp.nickname, idp.username):
                removed.append(f"keyring password of {idp.username} at {idp.nickname}")
            proxy = _stored_proxy(idp)
            if proxy and proxy.username and delete_password(proxy.keyring_entry, proxy.username):
                removed.append(f"keyring password of {proxy.username} at the proxy {proxy.url}")
            if delete_password(idp.nickname, SESSION_KEY, service=SESSION_SERVICE):
                removed.append(f"keyring session of {idp.nickname}")
        for name in OWN_ENTRIES:
            path = self.config_dir / name
            if path.is_dir() and not path.is_symlink():
                remove_tree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue
            removed.append(str(path))
        with contextlib.suppress(OSError):  # not empty: someone else's files live there too
            self.config_dir.rmdir()
        return removed
