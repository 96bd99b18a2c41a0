"""The browser: find an installed one, start it through Selenium behind the capture proxy.

Chromium, Google Chrome and Microsoft Edge are driven through their Selenium drivers. The
driver comes from an explicit path, else from PATH, else from webdriver-manager (a download,
which fails quickly and clearly when offline). Selenium Manager is never consulted: the
driver and the browser binary are always passed explicitly.

The browser trusts our capture proxy's key only (``--ignore-certificate-errors-spki-list``),
keeps one persistent profile per identity provider (so the IdP's session survives between
runs), and is torn down completely on every path: no browser or driver process survives.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.errors import LocalFileError, SignInError, UsageError
from awscli_saml_sso.files import ensure_private_dir, locked

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

logger = logging.getLogger(__name__)

BROWSER_NAMES: tuple[str, ...] = ("chromium", "chrome", "edge", "firefox")

_ALIASES = {
    "chromium-browser": "chromium",
    "google-chrome": "chrome",
    "googlechrome": "chrome",
    "msedge": "edge",
    "microsoft-edge": "edge",
    "firefox-esr": "firefox",
}

# Where each browser's binary is looked for: names on PATH first, then usual locations.
_BINARIES: dict[str, tuple[str, ...]] = {
    "chromium": (
        "chromium",
        "chromium-browser",
        "/usr/bin/chromium",
        "/snap/bin/chromium",
        "/Applications/Chromium.app/Contents/MacOS/Chromium",
    ),
    "chrome": (
        "google-chrome",
        "google-chrome-stable",
        "/opt/google/chrome/chrome",
        "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
        r"C:\Program Files\Google\Chrome\Application\chrome.exe",
        r"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe",
    ),
    "edge": (
        "microsoft-edge",
        "microsoft-edge-stable",
        "/opt/microsoft/msedge/msedge",
        "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
        r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
        r"C:\Program Files\Microsoft\Edge\Application\msedge.exe",
    ),
    "firefox": ("firefox", "firefox-esr", "/Applications/Firefox.app/Contents/MacOS/firefox"),
}
_DRIVERS = {
    "chromium": "chromedriver",
    "chrome": "chromedriver",
    "edge": "msedgedriver",
    "firefox": "geckodriver",
}
_INSTALL_HINT = (
    "Install one, e.g. `apt-get install chromium chromium-driver` on Debian/Ubuntu, "
    "or pass --browser and --driver-path"
)
# Firefox has no equivalent of Chromium's SPKI pin: trusting the proxy would mean importing
# its CA into the profile's NSS store (certutil), which is not implemented yet.
_UNSUPPORTED = {
    "firefox": (
        "Firefox is not supported yet: it cannot be made to trust only the capture proxy; "
        "use --browser chromium, chrome or edge."
    )
}
_WINDOW_SIZE = "1280,900"
_QUIT_TIMEOUT = 5.0
_DOWNLOAD_TIMEOUT = 60.0
# Chromium's markers that a profile is in use; left behind when a browser crashed.
_SINGLETON_FILES = ("SingletonLock", "SingletonSocket", "SingletonCookie")
_PROFILE_LOCK_NAME = "awscli_saml_sso"  # files.locked() adds ".lock"


class BrowserNotFound(SignInError):
    """No usable browser (or driver) is installed; the message says what was looked for."""


@dataclass(frozen=True)
class BrowserSpec:
    """An installed browser and the driver to control it (None: download one at start)."""

    name: str
    binary: Path | None
    driver: Path | None


def _which(candidate: str) -> Path | None:
    if os.sep in candidate or candidate.startswith(("/", "C:")):
        path = Path(candidate)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    found = shutil.which(candidate)
    return Path(found) if found else None


def _find_binary(name: str) -> Path | None:
    for candidate in _BINARIES[name]:
        path = _which(candidate)
        if path is not None:
            return path
    return None


def find_browsers() -> list[BrowserSpec]:
    """List the installed browsers in preferred order, each with its driver from PATH if any.

    Firefox is recognised but not listed until it is supported (see _UNSUPPORTED).
    """
    found = []
    for name in BROWSER_NAMES:
        binary = _find_binary(name)
        if binary is None:
            continue
        if name in _UNSUPPORTED:
            continue
        driver = _which(_DRIVERS[name])
        found.append(BrowserSpec(name=name, binary=binary, driver=driver))
    return found


def resolve_browser(name: str | None, driver_path: Path | None) -> BrowserSpec:
    """Choose the browser to use: the named one, else the first installed (one with a driver first).

    Raises UsageError for an unknown name or a driver path that is not an executable file,
    and BrowserNotFound (exit 3) when the browser, or any browser, is not installed.
    """
    if driver_path is not None:
        driver_path = Path(driver_path).expanduser()
        if not (driver_path.is_file() and os.access(driver_path, os.X_OK)):
            raise UsageError(f"The driver path {driver_path} is not an executable file.")
    if name:
        key = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if key not in BROWSER_NAMES:
            raise UsageError(f"Unknown browser {name!r}; choose one of {', '.join(BROWSER_NAMES)}.")
        if key in _UNSUPPORTED:
            raise BrowserNotFound(_UNSUPPORTED[key])
        binary = _find_binary(key)
        if binary is None:
            looked = ", ".join(_BINARIES[key])
            raise BrowserNotFound(f"{key} is not installed (looked for {looked}). {_INSTALL_HINT}.")
        driver = driver_path or _which(_DRIVERS[key])
        return BrowserSpec(name=key, binary=binary, driver=driver)
    installed = find_browsers()
    if driver_path is not None:
        # An explicit driver decides the family: chromedriver/msedgedriver/geckodriver.
        family = [s for s in installed if _DRIVERS[s.name] in driver_path.name]
        installed = family or installed
    if not installed:
        looked = ", ".join(f"{n} (+{_DRIVERS[n]})" for n in BROWSER_NAMES)
        raise BrowserNotFound(
            f"No supported browser is installed (looked for {looked}). {_INSTALL_HINT}."
        )
    with_driver = [s for s in installed if s.driver is not None]
    spec = (with_driver or installed)[0]
    if driver_path is not None:
        spec = BrowserSpec(name=spec.name, binary=spec.binary, driver=driver_path)
    return spec


# -- the profile ---------------------------------------------------------------------------


@contextlib.contextmanager
def _locked_profile(profile_dir: Path, wait: float) -> Iterator[None]:
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


# -- the driver ----------------------------------------------------------------------------


def _download_driver(spec: BrowserSpec) -> Path:
    """Fetch a matching driver with webdriver-manager, bounded in time; raises BrowserNotFound."""
    result: dict[str, Any] = {}

    def fetch() -> None:
        try:
            if spec.name == "edge":
                from webdriver_manager.microsoft import EdgeChromiumDriverManager

                result["path"] = EdgeChromiumDriverManager().install()
            else:
                from webdriver_manager.chrome import ChromeDriverManager
                from webdriver_manager.core.os_manager import ChromeType

                chrome_type = ChromeType.CHROMIUM if spec.name == "chromium" else ChromeType.GOOGLE
                result["path"] = ChromeDriverManager(chrome_type=chrome_type).install()
        except Exception as exc:  # reported below as one sentence
            result["error"] = exc

    worker = threading.Thread(target=fetch, name="driver-download", daemon=True)
    worker.start()
    worker.join(_DOWNLOAD_TIMEOUT)
    driver = _DRIVERS[spec.name]
    if "path" in result:
        return Path(result["path"])
    reason = result.get("error") or f"no answer within {_DOWNLOAD_TIMEOUT:.0f} s"
    raise BrowserNotFound(
        f"No {driver} for {spec.name} was found on PATH and downloading one failed ({reason}). "
        f"Install it (e.g. `apt-get install chromium chromium-driver`) or pass --driver-path."
    )


def _chromium_options(
    spec: BrowserSpec, *, headless: bool, profile_dir: Path, proxy_port: int, ca_spki_sha256: str
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
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        arguments.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
    if headless:
        arguments.append("--headless=new")
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
    # Commands return at once; sign_in polls the page itself, with its own deadline.
    options.page_load_strategy = "none"
    return options


def _process_group_members(pgid: int) -> list[int]:
    """PIDs (not zombies) whose process group is ``pgid``, read from /proc."""
    members: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - not Linux
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _kill_process_group(process: subprocess.Popen[bytes] | None) -> None:
    """Terminate the driver's process group (driver, browser, helpers); reap the driver."""
    if process is None:
        return
    pgid = process.pid
    if hasattr(os, "killpg"):
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if not _process_group_members(pgid) and process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                process.poll()
                if not _process_group_members(pgid):
                    break
                time.sleep(0.05)
    else:  # pragma: no cover - Windows: no process groups; the driver kills its browser
        with contextlib.suppress(OSError):
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(2.0)


def _kill_profile_users(profile_dir: Path) -> None:
    """Kill any browser process still running on this profile, wherever its process group is."""
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - not Linux
        return
    # Browser processes name the profile in --user-data-dir; the crash handler (which leaves
    # the process group) names its database inside it.
    needles = (f"--user-data-dir={profile_dir}".encode(), f"={profile_dir}{os.sep}".encode())
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.startswith(n) or n in arg for arg in argv for n in needles):
            logger.debug("killing leftover browser process %s", entry.name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


def _quit(driver: WebDriver) -> None:
    """driver.quit(), bounded in time: a wedged driver must not stall the teardown."""
    worker = threading.Thread(target=_quietly_quit, args=(driver,), name="driver-quit", daemon=True)
    worker.start()
    worker.join(_QUIT_TIMEOUT)
    if worker.is_alive():
        logger.debug(
            "driver.quit() did not return within %.0f s; killing the browser", _QUIT_TIMEOUT
        )


def _quietly_quit(driver: WebDriver) -> None:
    try:
        # Leave a blank tab as the session Chromium restores next time, not an IdP page.
        driver.get("about:blank")
    except Exception:
        logger.debug("could not blank the page before quitting", exc_info=True)
    try:
        driver.quit()
    except Exception:
        logger.debug("driver.quit() failed", exc_info=True)


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
) -> Iterator[WebDriver]:
    """Start the browser behind the capture proxy and yield its Selenium WebDriver.

    On leaving (normally, on an exception or on KeyboardInterrupt) the driver is quit
    within a bounded time and the driver's whole process group is killed.

    Raises SignInError when the profile stays in use by another run for `profile_wait`
    seconds or the browser cannot start, UsageError when a visible browser has no display,
    and BrowserNotFound when no driver can be found or downloaded.
    """
    if spec.name in _UNSUPPORTED:
        raise BrowserNotFound(_UNSUPPORTED[spec.name])
    if not headless and sys.platform.startswith("linux"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UsageError(
                "a visible browser (--show-browser, --use-browser) needs a display, and "
                "neither DISPLAY nor WAYLAND_DISPLAY is set; sign in headless instead"
            )
    profile_dir = Path(profile_dir)
    with _locked_profile(profile_dir, profile_wait):
        driver_path = spec.driver or _download_driver(spec)
        options = _chromium_options(
            spec,
            headless=headless,
            profile_dir=profile_dir,
            proxy_port=proxy_port,
            ca_spki_sha256=ca_spki_sha256,
        )
        service = _make_service(spec, driver_path, profile_dir)
        driver = None
        try:
            driver = _start_driver(spec, service, options, start_timeout)
            yield driver
        finally:
            with _no_second_interrupt():
                try:
                    if driver is not None:
                        _quit(driver)
                finally:
                    _kill_process_group(getattr(service, "process", None))
                    _kill_profile_users(profile_dir)


@contextlib.contextmanager
def _no_second_interrupt() -> Iterator[None]:
    """Ignore Ctrl-C during the (bounded) teardown so it cannot leave processes behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _die_with_parent() -> Any:
    """A preexec_fn asking Linux to SIGKILL the driver when this process dies (even by SIGKILL).

    Chromium, talking to the driver over a pipe, then exits too. Resolved before the fork:
    the function run in the child only makes one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigkill)

    return preexec


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
    if spec.name == "edge":
        from selenium.webdriver.edge.service import Service as EdgeService

        return EdgeService(
            executable_path=str(driver_path),
            log_output=subprocess.DEVNULL,
            env=env,
            popen_kw=popen_kw,
        )
    from selenium.webdriver.chrome.service import Service as ChromeService

    return ChromeService(
        executable_path=str(driver_path),
        log_output=subprocess.DEVNULL,
        env=env,
        popen_kw=popen_kw,
    )


def _start_driver(spec: BrowserSpec, service: Any, options: Any, start_timeout: float) -> WebDriver:
    """Start driver and browser; a watchdog kills them if that takes longer than start_timeout."""
    from selenium.common.exceptions import WebDriverException

    expired = threading.Event()

    def watchdog() -> None:
        expired.set()
        _kill_process_group(getattr(service, "process", None))

    timer = threading.Timer(start_timeout, watchdog)
    timer.daemon = True
    started = time.monotonic()
    timer.start()
    try:
        if spec.name == "edge":
            from selenium.webdriver import Edge

            driver: WebDriver = Edge(options=options, service=service)
        else:
            from selenium.webdriver import Chrome

            driver = Chrome(options=options, service=service)
    except WebDriverException as exc:
        if expired.is_set():
            raise SignInError(
                f"{spec.name} did not start within {start_timeout:.0f} seconds."
            ) from exc
        raise SignInError(_start_failure(spec, exc)) from exc
    finally:
        timer.cancel()
    # Bound every later command: a wedged driver must not hang the sign-in.
    executor: Any = driver.command_executor
    executor._client_config.timeout = 30
    logger.debug("%s started in %.2f s", spec.name, time.monotonic() - started)
    return driver


def _start_failure(spec: BrowserSpec, exc: Exception) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "only supports" in first:
        return (
            f"The driver {spec.driver} does not match the installed {spec.name} ({first}); "
            "install the matching driver or pass --driver-path."
        )
    if "user data directory is already in use" in first:
        return "Another browser is using the sign-in profile; close it and try again."
    return f"{spec.name} could not be started through {_DRIVERS[spec.name]}: {first}"
