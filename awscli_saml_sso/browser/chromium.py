"""The browser: start Chromium, Google Chrome or Microsoft Edge through Selenium behind the
capture proxy, and tear it down completely on every path.

The browser trusts our capture proxy's key only (``--ignore-certificate-errors-spki-list``),
keeps one persistent profile per identity provider (so the IdP's session survives between
runs), and no browser or driver process survives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.browser import guardian, processes
from awscli_saml_sso.browser.discovery import (
    UNSUPPORTED,
    BrowserNotFound,
    BrowserSpec,
    download_driver,
    driver_on_loopback,
    quiet_selenium_manager,
)
from awscli_saml_sso.browser.driver import (
    end_driver,
    no_second_interrupt,
    quit_driver,
    start_with_watchdog,
)
from awscli_saml_sso.browser.profile import allow_negotiate, locked_profile
from awscli_saml_sso.errors import UsageError
from awscli_saml_sso.model import display_available

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

logger = logging.getLogger(__name__)

_WINDOW_SIZE = "1280,900"
#: Set to 1 to let Chromium run without its sandbox, which it needs when run as root.
NO_SANDBOX_VARIABLE = "ASS_BROWSER_NO_SANDBOX"


def sandbox_arguments() -> list[str]:
    """`--no-sandbox` when running as root with the explicit opt-in; nothing otherwise.

    Chromium will not start its sandbox as root. Without the sandbox, a page that exploits a
    bug in the browser runs with the user's rights, root's here, so it is never switched
    off silently. Raises UsageError as root without the opt-in.
    """
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return []
    if os.environ.get(NO_SANDBOX_VARIABLE, "").strip() == "1":
        return ["--no-sandbox"]
    raise UsageError(
        "the browser cannot use its sandbox when this tool runs as root, and without it a "
        "hostile page could take over the root account; run as an ordinary user, or set "
        f"{NO_SANDBOX_VARIABLE}=1 to accept that risk (containers, CI)"
    )


def _chromium_options(
    spec: BrowserSpec,
    *,
    headless: bool,
    profile_dir: Path,
    proxy_port: int,
    ca_spki_sha256: str,
    integrated_auth: tuple[str, ...] = (),
) -> Any:
    from selenium.webdriver.chrome.options import Options as ChromeOptions
    from selenium.webdriver.edge.options import Options as EdgeOptions

    options = EdgeOptions() if spec.name == "edge" else ChromeOptions()
    if spec.binary is not None:
        options.binary_location = str(spec.binary)
    arguments = [
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        # Without this Chromium sends localhost directly, so a local IdP would bypass us.
        "--proxy-bypass-list=<-loopback>",
        # Trust the capture proxy's CA key and nothing else; never all certificates.
        f"--ignore-certificate-errors-spki-list={ca_spki_sha256}",
        f"--user-data-dir={profile_dir}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        f"--window-size={_WINDOW_SIZE}",
        # DevTools over a pipe instead of a port: when the driver dies, Chromium exits with it.
        "--remote-debugging-pipe",
    ]
    if sys.platform.startswith("linux"):
        # No desktop keyring prompt on every run; the profile directory is 0700.
        arguments.append("--password-store=basic")
    elif sys.platform == "darwin":
        arguments.append("--use-mock-keychain")
    arguments.extend(sandbox_arguments())
    if headless:
        arguments.append("--headless=new")
    if integrated_auth:
        # Kerberos tickets for these exact hosts only; never delegated (no delegate list).
        arguments.append(f"--auth-server-allowlist={','.join(integrated_auth)}")
    for argument in arguments:
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs",
        {
            # The password must never be stored by the browser in the profile.
            "credentials_enable_service": False,
            "profile.password_manager_enabled": False,
            # Leak detection would send a hash of the typed credentials to Google.
            "profile.password_manager_leak_detection": False,
            "autofill.profile_enabled": False,
            "autofill.credit_card_enabled": False,
            # "Continue where you left off": Chromium then keeps session cookies across
            # restarts, so the IdP's session (often a session cookie) survives between runs.
            "session.restore_on_startup": 1,
        },
    )
    # Commands return at once; fill_forms polls the page itself, with its own deadline.
    options.page_load_strategy = "none"
    driver_on_loopback(options)
    return options


@contextlib.contextmanager
def open_browser(
    spec: BrowserSpec,
    *,
    headless: bool,
    profile_dir: Path,
    proxy_port: int,
    ca_spki_sha256: str,
    start_timeout: float = 30.0,
    profile_wait: float = 0.0,
    integrated_auth: tuple[str, ...] = (),
) -> Iterator[WebDriver]:
    """Start the browser behind the capture proxy and yield its Selenium WebDriver.

    On leaving (normally, on an exception or on KeyboardInterrupt) the driver is quit
    within a bounded time and the driver's whole process group is killed.

    Raises SignInError when the profile stays in use by another run for `profile_wait`
    seconds or the browser cannot start, UsageError when a visible browser has no display,
    and BrowserNotFound when no driver can be found or downloaded.
    """
    if spec.name in UNSUPPORTED:
        raise BrowserNotFound(UNSUPPORTED[spec.name])
    sandbox_arguments()  # as root without the opt-in: refuse before anything starts
    if not headless and sys.platform.startswith("linux"):
        if not display_available():
            raise UsageError(
                "a visible browser (--show-browser, --use-browser) needs a display, and "
                "neither DISPLAY nor WAYLAND_DISPLAY is set; sign in headless instead"
            )
    profile_dir = Path(profile_dir)
    quiet_selenium_manager()
    with locked_profile(profile_dir, profile_wait):
        driver_path = spec.driver or download_driver(spec)
        options = _chromium_options(
            spec,
            headless=headless,
            profile_dir=profile_dir,
            proxy_port=proxy_port,
            ca_spki_sha256=ca_spki_sha256,
            integrated_auth=integrated_auth,
        )
        if integrated_auth:
            allow_negotiate(profile_dir)
        service = _make_service(spec, driver_path, profile_dir)
        # Without the kernel's parent-death signal (macOS, Windows), a guardian process
        # ends the browser if this process dies before its teardown.
        watcher = guardian.start(profile_dir) if _die_with_parent() is None else None
        driver = None
        try:
            driver = _start_driver(spec, service, options, start_timeout, watcher)
            yield driver
        finally:
            with no_second_interrupt():
                try:
                    if driver is not None:
                        quit_driver(driver)
                finally:
                    end_driver(service)
                    processes.end_profile_users(profile_dir)
                    if watcher is not None:
                        watcher.done()


def _die_with_parent() -> Any:
    """The driver's parent-death SIGKILL on Linux (Chromium, on its pipe, exits with the
    driver); None elsewhere, where the guardian stands in."""
    return processes.die_with_parent(kill=True)


def _driver_reachable(port: int, base: str) -> bool:
    """Whether the driver answers `GET <base>/status` on localhost (never through a proxy)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://localhost:{port}{base}/status", timeout=2) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _behind_url_base(service_class: Any, base: str) -> Any:
    """`service_class` with every command under the secret path `base` (`--url-base`).

    The driver's port accepts any local process; without the base path the commands are
    unknown to it. The path is a per-run random secret, but it is in the driver's command line
    (README, "What is not defended").
    """

    class Hidden(service_class):  # type: ignore[misc]
        @property
        def service_url(self) -> str:
            return f"{super().service_url}{base}"

        def is_connectable(self) -> bool:
            return _driver_reachable(self.port, base)

    return Hidden


def _make_service(spec: BrowserSpec, driver_path: Path, profile_dir: Path) -> Any:
    popen_kw: dict[str, Any] = {}
    # Chromium puts its crash database under $XDG_CONFIG_HOME, not under --user-data-dir;
    # keep it inside the profile so the tool writes nothing else in the home directory.
    env = dict(os.environ, XDG_CONFIG_HOME=str(profile_dir / "xdg-config"))
    if os.name == "posix":
        # Own session: Ctrl-C in the terminal does not reach the browser before we tear it
        # down in order, and the whole tree can be killed as one process group.
        popen_kw["start_new_session"] = True
        preexec = _die_with_parent()
        if preexec is not None:
            popen_kw["preexec_fn"] = preexec
    # The driver's commands live under a random path only this process knows (and whoever
    # can read the driver's command line): a local port scan finds nothing to drive.
    base = f"/{secrets.token_urlsafe(18)}"
    if spec.name == "edge":
        from selenium.webdriver.edge.service import Service as EdgeService

        service_class: Any = EdgeService
    else:
        from selenium.webdriver.chrome.service import Service as ChromeService

        service_class = ChromeService
    return _behind_url_base(service_class, base)(
        executable_path=str(driver_path),
        service_args=[f"--url-base={base}"],
        log_output=subprocess.DEVNULL,
        env=env,
        popen_kw=popen_kw,
    )


def _start_driver(
    spec: BrowserSpec,
    service: Any,
    options: Any,
    start_timeout: float,
    watcher: guardian.Guardian | None = None,
) -> WebDriver:
    """Start driver and browser under the watchdog (driver.start_with_watchdog); `watcher`
    (a guardian) is told the driver's PID as soon as the driver runs."""
    if watcher is not None:
        _tell_when_started(service, watcher)

    def create() -> WebDriver:
        if spec.name == "edge":
            from selenium.webdriver import Edge

            return Edge(options=options, service=service)
        from selenium.webdriver import Chrome

        return Chrome(options=options, service=service)

    return start_with_watchdog(spec, service, start_timeout, create)


def _tell_when_started(service: Any, watcher: guardian.Guardian) -> None:
    """Pass the driver's PID to the guardian the moment Selenium has started it."""
    start = service.start

    def start_and_tell() -> None:
        try:
            start()
        finally:
            process = getattr(service, "process", None)
            watcher.watch(process.pid if process is not None else None)

    service.start = start_and_tell
