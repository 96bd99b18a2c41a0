"""Which browser to drive: Chromium, Google Chrome, Microsoft Edge or Firefox, and its driver.

Each browser is looked for where its installer puts it on the running system (the tables in
`FAMILIES`): on Windows the `App Paths` registry entries (per user, then machine), then the
Program Files and per-user application folders; on macOS the `.app` bundles in
/Applications and ~/Applications; on Linux the commands on PATH, the packages' and snaps'
install locations. Its driver comes from an explicit path, else from PATH, else from
webdriver-manager (a download, which fails quickly and clearly when offline). Selenium
Manager is never consulted: the driver and the browser binary are always passed explicitly.

What the search reads (platform name, environment, file-system root, registry) is a
`Layout`, so tests build each platform's layout from real files in a temporary tree.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awscli_saml_sso.errors import SignInError, UsageError
from awscli_saml_sso.limits import TimeLimitExceeded, call_with_time_limit


@dataclass(frozen=True)
class Family:
    """Where one browser and its driver are installed, per system (see `FAMILIES`).

    `commands`: names looked up on PATH (every system; with `.exe` on Windows).
    `linux`: absolute paths of packages and snaps. `mac_apps`: (bundle, executable) in
    /Applications or ~/Applications. `windows`: paths under %ProgramFiles%,
    %ProgramFiles(x86)% and %LOCALAPPDATA%. `app_paths`: the executable's `App Paths`
    registry key. `drivers`: the driver's names on PATH, preferred first.
    """

    name: str
    drivers: tuple[str, ...]
    commands: tuple[str, ...] = ()
    linux: tuple[str, ...] = ()
    mac_apps: tuple[tuple[str, str], ...] = ()
    windows: tuple[str, ...] = ()
    app_paths: tuple[str, ...] = ()

    @property
    def driver(self) -> str:
        return self.drivers[0]


# Preferred order when no browser is named. Flatpak builds are not listed: a driver outside
# their sandbox is not known to work with them (the DevTools pipe must cross it).
FAMILIES: tuple[Family, ...] = (
    Family(
        name="chromium",
        drivers=("chromedriver", "chromium.chromedriver"),  # the snap names its driver so
        commands=("chromium", "chromium-browser"),
        linux=("/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium"),
        mac_apps=(("Chromium.app", "Chromium"),),
        windows=(r"Chromium\Application\chrome.exe",),
    ),
    Family(
        name="chrome",
        drivers=("chromedriver",),
        commands=("google-chrome", "google-chrome-stable"),
        linux=("/opt/google/chrome/chrome", "/usr/bin/google-chrome"),
        mac_apps=(("Google Chrome.app", "Google Chrome"),),
        windows=(r"Google\Chrome\Application\chrome.exe",),
        app_paths=("chrome.exe",),
    ),
    Family(
        name="edge",
        drivers=("msedgedriver",),
        commands=("microsoft-edge", "microsoft-edge-stable"),
        linux=("/opt/microsoft/msedge/msedge", "/usr/bin/microsoft-edge"),
        mac_apps=(("Microsoft Edge.app", "Microsoft Edge"),),
        windows=(r"Microsoft\Edge\Application\msedge.exe",),
        app_paths=("msedge.exe",),
    ),
    Family(
        name="firefox",
        drivers=("geckodriver", "firefox.geckodriver"),
        commands=("firefox", "firefox-esr"),
        linux=("/usr/bin/firefox-esr", "/usr/bin/firefox", "/snap/bin/firefox"),
        mac_apps=(("Firefox.app", "firefox"),),
        windows=(r"Mozilla Firefox\firefox.exe",),
        app_paths=("firefox.exe",),
    ),
)
BY_NAME = {family.name: family for family in FAMILIES}
BROWSER_NAMES: tuple[str, ...] = tuple(BY_NAME)
DRIVERS = {family.name: family.driver for family in FAMILIES}

_ALIASES = {
    "chromium-browser": "chromium",
    "google-chrome": "chrome",
    "googlechrome": "chrome",
    "msedge": "edge",
    "microsoft-edge": "edge",
    "firefox-esr": "firefox",
}
_DRIVER_HINTS = {
    "firefox": "Install it with `cargo install --locked geckodriver`, or pass --driver-path"
}
# Browsers recognised but not driven; empty since Firefox is supported.
UNSUPPORTED: dict[str, str] = {}
_DOWNLOAD_TIMEOUT = 60.0
# Windows folders that hold installed programs, per machine then per user.
_WINDOWS_PROGRAM_DIRS = ("ProgramFiles", "ProgramFiles(x86)", "ProgramW6432", "LOCALAPPDATA")


class BrowserNotFound(SignInError):
    """No usable browser (or driver) is installed; the message says what was looked for."""


@dataclass(frozen=True)
class BrowserSpec:
    """An installed browser and the driver to control it (None: download one at start)."""

    name: str
    binary: Path | None
    driver: Path | None


def clean_registry_value(value: str, env: Mapping[str, str]) -> str:
    """An `App Paths` default value as a path: quotes removed, %VARIABLES% expanded."""
    text = value.strip().strip('"')
    for key, replacement in env.items():
        text = text.replace(f"%{key}%", replacement)
    return text


def _registry_app_paths(executable: str, env: Mapping[str, str]) -> list[str]:
    """The `App Paths` entries for `executable`: per user (HKCU) first, then machine (HKLM)."""
    found: list[str] = []
    if sys.platform == "win32":
        import winreg

        key = rf"SOFTWARE\Microsoft\Windows\CurrentVersion\App Paths\{executable}"
        for hive in (winreg.HKEY_CURRENT_USER, winreg.HKEY_LOCAL_MACHINE):
            try:
                with winreg.OpenKey(hive, key) as handle:
                    value, _kind = winreg.QueryValueEx(handle, "")
            except OSError:
                continue
            if isinstance(value, str) and value.strip():
                found.append(clean_registry_value(value, env))
    return found


@dataclass(frozen=True)
class Layout:
    """What the search reads: the system's name (sys.platform), its environment, the root
    that fixed absolute paths are read under, and its `App Paths` registry (Windows)."""

    platform: str = sys.platform
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    root: Path = Path("/")
    registry: Callable[[str, Mapping[str, str]], Sequence[str]] = _registry_app_paths

    @property
    def windows(self) -> bool:
        return self.platform == "win32"

    def executable(self, path: Path) -> bool:
        """A regular file this system would run (Windows has no execute bit to check)."""
        return path.is_file() and (self.windows or os.access(path, os.X_OK))

    def fixed(self, path: str) -> Path:
        """A fixed absolute path of the tables, read under `root`."""
        return self.root.joinpath(path.lstrip("/"))

    def on_path(self, command: str) -> Iterator[Path]:
        """`command` in each PATH directory (`command.exe` on Windows)."""
        separator = ";" if self.windows else ":"
        if self.windows and not command.lower().endswith(".exe"):
            command += ".exe"  # browsers and drivers are programs, never scripts, there
        for directory in self.env.get("PATH", "").split(separator):
            # An empty entry would mean the current directory: never run a program from it.
            if directory.strip():
                yield Path(directory.strip().strip('"')) / command

    def candidates(self, family: Family) -> Iterator[Path]:
        """Where `family`'s browser may be on this system, in the order to try them."""
        if self.windows:
            for executable in family.app_paths:
                yield from (Path(value) for value in self.registry(executable, self.env))
            for variable in _WINDOWS_PROGRAM_DIRS:
                folder = self.env.get(variable)
                if folder:
                    for relative in family.windows:
                        yield Path(folder).joinpath(*relative.split("\\"))
            for command in family.commands:
                yield from self.on_path(command)
            return
        for command in family.commands:
            yield from self.on_path(command)
        if self.platform == "darwin":
            bases = [self.fixed("/Applications")]
            if self.env.get("HOME"):
                bases.append(Path(self.env["HOME"]) / "Applications")
            for applications in bases:
                for bundle, executable in family.mac_apps:
                    yield applications / bundle / "Contents" / "MacOS" / executable
        else:
            yield from (self.fixed(path) for path in family.linux)

    def looked_for(self, family: Family) -> str:
        """Where the search looked for `family`, for a sentence."""
        if self.windows:
            places = [f"App Paths\\{name} in the registry" for name in family.app_paths]
            folders = "%ProgramFiles%, %ProgramFiles(x86)% and %LOCALAPPDATA%"
            places += [f"{relative} under {folders}" for relative in family.windows]
            return ", ".join([*places, "PATH"])
        commands = ", ".join(family.commands)
        if self.platform == "darwin":
            apps = ", ".join(bundle for bundle, _ in family.mac_apps)
            return f"{commands} on PATH, {apps} in /Applications and ~/Applications"
        return f"{commands} on PATH, {', '.join(family.linux)}"

    def install_hint(self) -> str:
        if self.platform.startswith("linux"):
            return (
                "Install one, e.g. `apt-get install chromium chromium-driver` on Debian/Ubuntu, "
                "or pass --browser and --driver-path"
            )
        return (
            "Install Google Chrome or Microsoft Edge and its driver (chromedriver or "
            "msedgedriver of the same version, on PATH), or pass --browser and --driver-path"
        )


def find_binary(family: Family, layout: Layout) -> Path | None:
    """The first installed executable of `family`'s browser, or None."""
    for candidate in layout.candidates(family):
        if layout.executable(candidate):
            return candidate
    return None


def find_driver(family: Family, layout: Layout) -> Path | None:
    """`family`'s driver from PATH (first name, first directory), or None."""
    for name in family.drivers:
        for candidate in layout.on_path(name):
            if layout.executable(candidate):
                return candidate
    return None


def find_browsers(layout: Layout | None = None) -> list[BrowserSpec]:
    """List the installed browsers in preferred order, each with its driver from PATH if any.

    Firefox is recognised but not listed until it is supported (see UNSUPPORTED).
    """
    layout = layout or Layout()
    found = []
    for family in FAMILIES:
        if family.name in UNSUPPORTED:
            continue
        binary = find_binary(family, layout)
        if binary is not None:
            found.append(BrowserSpec(family.name, binary, find_driver(family, layout)))
    return found


def _family_of_driver(driver_path: Path) -> set[str]:
    stem = driver_path.name.lower()
    return {f.name for f in FAMILIES if any(name in stem for name in f.drivers)}


def resolve_browser(
    name: str | None, driver_path: Path | None, layout: Layout | None = None
) -> BrowserSpec:
    """Choose the browser to use: the named one, else the first installed (one with a driver first).

    Raises UsageError for an unknown name or a driver path that is not an executable file,
    and BrowserNotFound (exit 3) when the browser, or any browser, is not installed.
    """
    layout = layout or Layout()
    if driver_path is not None:
        driver_path = Path(driver_path).expanduser()
        if not layout.executable(driver_path):
            raise UsageError(f"The driver path {driver_path} is not an executable file.")
    if name:
        key = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if key not in BY_NAME:
            raise UsageError(f"Unknown browser {name!r}; choose one of {', '.join(BROWSER_NAMES)}.")
        if key in UNSUPPORTED:
            raise BrowserNotFound(UNSUPPORTED[key])
        family = BY_NAME[key]
        binary = find_binary(family, layout)
        if binary is None:
            raise BrowserNotFound(
                f"{key} is not installed (looked for {layout.looked_for(family)}). "
                f"{layout.install_hint()}."
            )
        return BrowserSpec(key, binary, driver_path or find_driver(family, layout))
    installed = find_browsers(layout)
    if driver_path is not None:
        # An explicit driver decides the family: chromedriver/msedgedriver/geckodriver.
        families = _family_of_driver(driver_path)
        installed = [s for s in installed if s.name in families] or installed
    if not installed:
        looked = "; ".join(
            f"{f.name} (+{f.driver}): {layout.looked_for(f)}"
            for f in FAMILIES
            if f.name not in UNSUPPORTED
        )
        raise BrowserNotFound(
            f"No supported browser is installed (looked for {looked}). {layout.install_hint()}."
        )
    with_driver = [s for s in installed if s.driver is not None]
    spec = (with_driver or installed)[0]
    if driver_path is not None:
        spec = BrowserSpec(name=spec.name, binary=spec.binary, driver=driver_path)
    return spec


def quiet_selenium_manager() -> None:
    """Ask Selenium Manager, should anything ever start it, not to send usage statistics.

    The tool always passes the browser and its driver, so Selenium has no reason to run
    it; the variable is set in this process's environment, which the driver and browser
    inherit too.
    """
    os.environ["SE_AVOID_STATS"] = "true"


def driver_on_loopback(options: Any) -> None:
    """Make Selenium reach the driver on loopback directly, never through HTTP_PROXY /
    HTTPS_PROXY: a company proxy cannot reach this machine's loopback, and without NO_PROXY
    covering localhost every command to the driver would fail.

    Selenium 4.51 deprecates this option in favour of a ClientConfig, which its Chromium and
    Firefox WebDriver classes do not accept; they read only this flag, hence the silenced
    warning.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        options.ignore_local_proxy_environment_variables()


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

    quiet_selenium_manager()
    try:
        return Path(call_with_time_limit(fetch, _DOWNLOAD_TIMEOUT, "driver download"))
    except TimeLimitExceeded as exc:
        reason: object = exc
    except Exception as exc:  # reported below as one sentence
        reason = exc
    hint = _DRIVER_HINTS.get(spec.name) or Layout().install_hint().replace(
        "Install one", "Install a driver"
    )
    raise BrowserNotFound(
        f"No {DRIVERS[spec.name]} for {spec.name} was found on PATH and downloading one failed "
        f"({reason}). {hint}."
    )
