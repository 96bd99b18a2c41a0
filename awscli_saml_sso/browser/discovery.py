"""Which browser to drive: Chromium, Google Chrome, Microsoft Edge or Firefox, and its driver.

The driver comes from an explicit path, else from PATH, else from webdriver-manager (a
download, which fails quickly and clearly when offline). Selenium Manager is never
consulted: the driver and the browser binary are always passed explicitly.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awscli_saml_sso.errors import SignInError, UsageError
from awscli_saml_sso.limits import TimeLimitExceeded, call_with_time_limit

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
DRIVERS = {
    "chromium": "chromedriver",
    "chrome": "chromedriver",
    "edge": "msedgedriver",
    "firefox": "geckodriver",
}
_DRIVER_HINTS = {"firefox": "`cargo install --locked geckodriver`"}
_INSTALL_HINT = (
    "Install one, e.g. `apt-get install chromium chromium-driver` on Debian/Ubuntu, "
    "or pass --browser and --driver-path"
)
# Browsers recognised but not driven; empty since Firefox is supported.
UNSUPPORTED: dict[str, str] = {}
_DOWNLOAD_TIMEOUT = 60.0


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

    Firefox is recognised but not listed until it is supported (see UNSUPPORTED).
    """
    found = []
    for name in BROWSER_NAMES:
        binary = _find_binary(name)
        if binary is None:
            continue
        if name in UNSUPPORTED:
            continue
        driver = _which(DRIVERS[name])
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
        if key in UNSUPPORTED:
            raise BrowserNotFound(UNSUPPORTED[key])
        binary = _find_binary(key)
        if binary is None:
            looked = ", ".join(_BINARIES[key])
            raise BrowserNotFound(f"{key} is not installed (looked for {looked}). {_INSTALL_HINT}.")
        driver = driver_path or _which(DRIVERS[key])
        return BrowserSpec(name=key, binary=binary, driver=driver)
    installed = find_browsers()
    if driver_path is not None:
        # An explicit driver decides the family: chromedriver/msedgedriver/geckodriver.
        family = [s for s in installed if DRIVERS[s.name] in driver_path.name]
        installed = family or installed
    if not installed:
        looked = ", ".join(f"{n} (+{DRIVERS[n]})" for n in BROWSER_NAMES)
        raise BrowserNotFound(
            f"No supported browser is installed (looked for {looked}). {_INSTALL_HINT}."
        )
    with_driver = [s for s in installed if s.driver is not None]
    spec = (with_driver or installed)[0]
    if driver_path is not None:
        spec = BrowserSpec(name=spec.name, binary=spec.binary, driver=driver_path)
    return spec


def download_driver(spec: BrowserSpec) -> Path:
    """Fetch a matching driver with webdriver-manager, bounded in time; raises BrowserNotFound."""

    def fetch() -> Any:
        if spec.name == "firefox":
            from webdriver_manager.firefox import GeckoDriverManager

            return GeckoDriverManager().install()
        if spec.name == "edge":
            from webdriver_manager.microsoft import EdgeChromiumDriverManager

            return EdgeChromiumDriverManager().install()
        from webdriver_manager.chrome import ChromeDriverManager
        from webdriver_manager.core.os_manager import ChromeType

        chrome_type = ChromeType.CHROMIUM if spec.name == "chromium" else ChromeType.GOOGLE
        return ChromeDriverManager(chrome_type=chrome_type).install()

    try:
        return Path(call_with_time_limit(fetch, _DOWNLOAD_TIMEOUT, "driver download"))
    except TimeLimitExceeded as exc:
        reason: object = exc
    except Exception as exc:  # reported below as one sentence
        reason = exc
    how = _DRIVER_HINTS.get(spec.name, "`apt-get install chromium chromium-driver`")
    raise BrowserNotFound(
        f"No {DRIVERS[spec.name]} for {spec.name} was found on PATH and downloading one failed "
        f"({reason}). Install it (e.g. {how}) or pass --driver-path."
    )
