"""`doctor`: what breaks sign-ins in the field, checked on one screen, each with a time limit.

Browsers and drivers (versions, whether they match), the keyring (back end, how long it
answers), a display for visible sign-ins, proxy settings, CA bundle, the tool directory's
modes and owner, each stored IdP (reachable, TLS, clock skew against its Date header), the
AWS files. A check is `ok`, `warn` (works, but worth knowing) or `fail` (a sign-in will
break); any `fail` makes the command exit non-zero.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from awscli_saml_sso.aws import config_files
from awscli_saml_sso.browser.discovery import DRIVERS, find_browsers
from awscli_saml_sso.errors import AssError
from awscli_saml_sso.idp.passwords import KeyringUnavailable, get_password, os_keyring
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.limits import TimeLimitExceeded, call_with_time_limit
from awscli_saml_sso.model import IdentityProvider

CHECK_TIMEOUT = 10.0
#: Clock skew beyond which SAML assertions may be refused (issued "in the future" or expired).
MAX_SKEW = 60.0
VERSION = re.compile(r"(\d+)\.(\d+)[.\d]*")
CA_VARIABLES = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str  # ok | warn | fail
    detail: str
    seconds: float = 0.0


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def document(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [asdict(check) for check in self.checks]}

    def lines(self) -> list[str]:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        width = max((len(check.name) for check in self.checks), default=0)
        return [
            f"[{marks[check.status]}] {check.name:<{width}}  {check.detail}"
            for check in self.checks
        ]


def _timed(name: str, probe: Callable[[], Iterator[Check]]) -> list[Check]:
    """Run one probe under the time limit; a stall or an error is its failure."""
    began = time.monotonic()
    try:
        found = call_with_time_limit(lambda: list(probe()), CHECK_TIMEOUT, name)
    except TimeLimitExceeded:
        found = [Check(name, "fail", f"no answer within {CHECK_TIMEOUT:g} s")]
    except AssError as exc:
        found = [Check(name, "fail", exc.message)]
    except Exception as exc:  # a probe's unexpected error is a finding, not a crash
        found = [Check(name, "fail", f"{type(exc).__name__}: {exc}")]
    spent = round(time.monotonic() - began, 3)
    return [Check(c.name, c.status, c.detail, c.seconds or spent) for c in found]


# Browsers and drivers ------------------------------------------------------------------------
def _version(program: Path) -> str | None:
    try:
        answer = subprocess.run(
            [str(program), "--version"], capture_output=True, text=True, timeout=8, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = VERSION.search(answer.stdout + answer.stderr)
    return found.group(0) if found else None


def _major(version: str | None) -> str | None:
    return version.split(".")[0] if version else None


def browsers(driver_path: Path | None) -> Iterator[Check]:
    found = find_browsers()
    if not found:
        yield Check("browser", "fail", "no Chromium, Chrome or Edge is installed")
        return
    if driver_path is not None and not (driver_path.is_file() and os.access(driver_path, os.X_OK)):
        yield Check("driver", "fail", f"--driver-path {driver_path} is not an executable file")
        driver_path = None
    for spec in found:
        if spec.binary is None:
            continue
        version = _version(spec.binary)
        yield Check(
            f"browser {spec.name}",
            "ok" if version else "warn",
            f"{spec.binary} {version or '(version unknown)'}",
        )
        driver = driver_path or spec.driver
        if driver is None:
            yield Check(
                f"driver {spec.name}",
                "warn",
                f"no {DRIVERS[spec.name]} on PATH: a sign-in would try to download one (fails "
                "offline); install it or pass --driver-path",
            )
            continue
        driver_version = _version(driver)
        # Chromium's drivers share the browser's major version; geckodriver has its own
        # numbering and drives every supported Firefox.
        same = spec.name == "firefox" or _major(version) == _major(driver_version)
        yield Check(
            f"driver {spec.name}",
            "ok" if same else "fail",
            f"{driver} {driver_version or '(version unknown)'}"
            + ("" if same else f": does not match {spec.name} {version}"),
        )


# Keyring, display, network settings ----------------------------------------------------------
def keyring() -> Iterator[Check]:
    import keyring as keyring_module

    began = time.monotonic()
    try:
        get_password("doctor", "probe")
    except KeyringUnavailable as exc:
        yield Check("keyring", "fail", str(exc))
        return
    spent = time.monotonic() - began
    # The back end the tool really uses: an OS keyring, the chainer's OS member included.
    backend = type(os_keyring(keyring_module.get_keyring()))
    status = "ok" if spent < 2 else "warn"
    yield Check(
        "keyring",
        status,
        f"{backend.__module__}.{backend.__name__} answered in {spent * 1000:.0f} ms",
        round(spent, 3),
    )


def display(env: dict[str, str]) -> Iterator[Check]:
    if not sys.platform.startswith("linux"):
        yield Check("display", "ok", f"{sys.platform}: the desktop session")
    elif env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        shown = env.get("WAYLAND_DISPLAY") or env.get("DISPLAY")
        yield Check("display", "ok", f"{shown} (visible sign-ins and `console` can open windows)")
    else:
        yield Check(
            "display",
            "warn",
            "no DISPLAY or WAYLAND_DISPLAY: headless sign-ins only (--show-browser, --use-browser "
            "and `console` need a desktop)",
        )


def proxies(env: dict[str, str]) -> Iterator[Check]:
    from urllib.parse import urlsplit

    values = {name: env[name] for name in PROXY_VARIABLES if env.get(name)}
    if not values:
        yield Check("proxy", "ok", "no proxy variables set (direct connections)")
        return
    for name, value in values.items():
        if name.lower() == "no_proxy":
            yield Check("proxy", "ok", f"{name}={value}")
            continue
        parts = urlsplit(value if "://" in value else f"http://{value}")
        if not parts.hostname:
            yield Check("proxy", "fail", f"{name} is not a proxy URL")
        else:
            port = f":{parts.port}" if parts.port else ""
            yield Check("proxy", "ok", f"{name} -> {parts.scheme}://{parts.hostname}{port}")


def ca_bundle(env: dict[str, str]) -> Iterator[Check]:
    import ssl

    named = [(name, env[name]) for name in CA_VARIABLES if env.get(name)]
    if not named:
        paths = ssl.get_default_verify_paths()
        yield Check("CA bundle", "ok", f"system default ({paths.cafile or paths.capath})")
        return
    for name, value in named:
        try:
            ssl.create_default_context(cafile=value)
        except (OSError, ssl.SSLError) as exc:
            yield Check("CA bundle", "fail", f"{name}={value} cannot be used: {exc}")
        else:
            yield Check("CA bundle", "ok", f"{name}={value}")


# The tool's directory and the AWS files --------------------------------------------------------
def tool_directory(settings: Settings) -> Iterator[Check]:
    root = settings.config_dir
    if not root.exists():
        yield Check("tool directory", "ok", f"{root} does not exist yet (made 0700 on first use)")
        return
    problems: list[str] = []
    for path in _own_paths(root):
        info = path.lstat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            problems.append(f"{path} is mode {stat.S_IMODE(info.st_mode):04o}")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            problems.append(f"{path} belongs to uid {info.st_uid}")
    if problems:
        shown = "; ".join(problems[:3]) + (
            f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        )
        yield Check("tool directory", "fail", f"others may read it: {shown}")
    else:
        yield Check("tool directory", "ok", f"{root}: private (0700 directories, 0600 files)")


def _own_paths(root: Path) -> Iterator[Path]:
    """The directory, its files and folders; of a browser profile only its top folder (what
    a browser writes inside is the browser's business).
    """
    for folder, folders, files in os.walk(root):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        yield here
        if depth >= 2 and here.relative_to(root).parts[0] in ("browser", "console"):
            folders[:] = []
            continue
        for name in files:
            path = here / name
            if not path.is_symlink():
                yield path


def aws_files(env: dict[str, str]) -> Iterator[Check]:
    for label, path in (
        ("AWS credentials", config_files.credentials_file(env)),
        ("AWS config", config_files.config_file(env)),
    ):
        if not path.exists():
            yield Check(label, "ok", f"{path} does not exist yet")
            continue
        config_files.read_profile(path, "default")  # parses the whole file
        yield Check(label, "ok", f"{path} parses")


# Identity providers ---------------------------------------------------------------------------
def identity_provider(idp: IdentityProvider) -> Iterator[Check]:
    """Reach the IdP's login URL (TLS verified); compare its Date header with our clock."""
    import ssl
    import urllib.error
    import urllib.request

    name = f"IdP {idp.nickname}"
    # Stored IdP URLs are http(s) only (store.check_url).
    request = urllib.request.Request(  # noqa: S310
        idp.url, headers={"User-Agent": "awscli_saml_sso doctor"}
    )
    try:
        with urllib.request.urlopen(request, timeout=CHECK_TIMEOUT - 1) as answer:  # noqa: S310
            status, date = answer.status, answer.headers.get("Date")
    except urllib.error.HTTPError as exc:  # it answered: reachable all the same
        status, date = exc.code, exc.headers.get("Date")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            why = f"TLS certificate not trusted: {reason.verify_message}"
        elif isinstance(reason, ssl.SSLError):
            why = f"TLS error: {reason.reason or reason}"
        else:
            why = str(getattr(reason, "strerror", None) or reason)
        yield Check(name, "fail", f"{idp.url} is unreachable: {why}")
        return
    yield Check(name, "ok", f"{idp.url} answered HTTP {status}")
    yield from clock_skew(idp.nickname, date)


def clock_skew(nickname: str, date: str | None) -> Iterator[Check]:
    name = f"clock vs {nickname}"
    if not date:
        yield Check(name, "warn", "the IdP sent no Date header; skew unknown")
        return
    import email.utils

    try:
        theirs = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        yield Check(name, "warn", f"unreadable Date header {date!r}")
        return
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=timezone.utc)
    skew = (datetime.now(timezone.utc) - theirs).total_seconds()
    text = f"this machine is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the IdP"
    if abs(skew) > MAX_SKEW:
        yield Check(name, "fail", f"{text}: SAML assertions may be refused; fix the clock (NTP)")
    else:
        yield Check(name, "ok", text if abs(skew) >= 2 else "in step with the IdP")


# The whole screen -------------------------------------------------------------------------------
def run_checks(settings: Settings, env: dict[str, str], driver_path: Path | None) -> Report:
    """Every check, in the order a sign-in meets them."""
    report = Report()
    probes: list[tuple[str, Callable[[], Iterator[Check]]]] = [
        ("browser", lambda: browsers(driver_path)),
        ("keyring", keyring),
        ("display", lambda: display(env)),
        ("proxy", lambda: proxies(env)),
        ("CA bundle", lambda: ca_bundle(env)),
        ("tool directory", lambda: tool_directory(settings)),
        ("AWS files", lambda: aws_files(env)),
    ]
    try:
        idps = settings.load_idps()
    except AssError as exc:
        report.checks.append(Check("stored IdPs", "fail", exc.message))
        idps = {}
    if not idps:
        report.checks.append(Check("stored IdPs", "ok", "none stored yet"))
    for idp in idps.values():
        probes.append((f"IdP {idp.nickname}", lambda idp=idp: identity_provider(idp)))  # type: ignore[misc]
    for name, probe in probes:
        report.checks.extend(_timed(name, probe))
    return report
