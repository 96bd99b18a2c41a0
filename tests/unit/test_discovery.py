"""Browser discovery on each system's layout, built from real files in a temporary tree.

The search reads its system name, environment, file-system root and (Windows) registry from
a `Layout`; each test lays out the files as that system's installers do.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from awscli_saml_sso.browser.discovery import (
    BY_NAME,
    BrowserNotFound,
    BrowserSpec,
    Layout,
    clean_registry_value,
    find_browsers,
    find_driver,
    resolve_browser,
)
from awscli_saml_sso.errors import UsageError

# A POSIX PATH (":"-separated) cannot hold Windows paths with drive letters, and Windows
# has no execute bit: the Linux and macOS layouts are built on POSIX systems only.
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX layouts need POSIX paths")


def program(path: Path, mode: int = 0o755) -> Path:
    """A real file standing for an installed program."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF stand-in")
    path.chmod(mode)
    return path


def no_registry(executable: str, env: Mapping[str, str]) -> Sequence[str]:
    return []


# Linux -----------------------------------------------------------------------------------------
def linux(tmp_path: Path, *path_dirs: str) -> Layout:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    path = ":".join(str(root / d.lstrip("/")) for d in path_dirs)
    return Layout(platform="linux", env={"PATH": path, "HOME": str(root / "home")}, root=root)


@posix_only
def test_linux_debian_packages(tmp_path: Path) -> None:
    layout = linux(tmp_path, "/usr/local/bin", "/usr/bin")
    root = layout.root
    chromium = program(root / "usr/bin/chromium")
    driver = program(root / "usr/bin/chromedriver")
    assert find_browsers(layout) == [BrowserSpec("chromium", chromium, driver)]
    assert resolve_browser(None, None, layout) == BrowserSpec("chromium", chromium, driver)


@posix_only
def test_linux_path_comes_first_and_needs_the_execute_bit(tmp_path: Path) -> None:
    layout = linux(tmp_path, "/opt/bin")
    root = layout.root
    program(root / "opt/bin/google-chrome", mode=0o644)  # not executable: not a program
    packaged = program(root / "opt/google/chrome/chrome")
    assert resolve_browser("chrome", None, layout).binary == packaged
    own = program(root / "opt/bin/google-chrome-stable")
    assert resolve_browser("google-chrome", None, layout).binary == own


@posix_only
def test_linux_snap_chromium_and_its_driver(tmp_path: Path) -> None:
    layout = linux(tmp_path, "/usr/bin", "/snap/bin")
    root = layout.root
    browser = program(root / "snap/bin/chromium")
    driver = program(root / "snap/bin/chromium.chromedriver")
    assert find_browsers(layout) == [BrowserSpec("chromium", browser, driver)]


@posix_only
def test_linux_edge_package_with_msedgedriver(tmp_path: Path) -> None:
    layout = linux(tmp_path, "/usr/bin", "/usr/local/bin")
    root = layout.root
    program(root / "usr/bin/chromium")  # no chromedriver for it
    edge = program(root / "opt/microsoft/msedge/msedge")
    driver = program(root / "usr/local/bin/msedgedriver")
    found = find_browsers(layout)
    assert [spec.name for spec in found] == ["chromium", "edge"]
    # No browser named: the first one that has its driver.
    assert resolve_browser(None, None, layout) == BrowserSpec("edge", edge, driver)


@posix_only
def test_linux_nothing_installed_says_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(BrowserNotFound) as err:
        resolve_browser(None, None, linux(tmp_path, "/usr/bin"))
    message = err.value.format_message()
    assert "chromium (+chromedriver): chromium, chromium-browser on PATH, /usr/bin/chromium" in (
        message
    )
    assert "edge (+msedgedriver): microsoft-edge" in message
    assert "apt-get install chromium chromium-driver" in message


@posix_only
def test_empty_path_entries_are_not_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    program(tmp_path / "chromedriver")
    layout = Layout(platform="linux", env={"PATH": "::"}, root=tmp_path / "root")
    assert find_driver(BY_NAME["chromium"], layout) is None


# macOS -----------------------------------------------------------------------------------------
def mac(tmp_path: Path) -> Layout:
    root = tmp_path / "root"
    env = {"PATH": str(root / "usr/local/bin"), "HOME": str(root / "Users/jd")}
    return Layout(platform="darwin", env=env, root=root)


@posix_only
def test_macos_app_bundles_in_both_applications_folders(tmp_path: Path) -> None:
    layout = mac(tmp_path)
    root = layout.root
    chrome = program(root / "Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
    chromium = program(root / "Users/jd/Applications/Chromium.app/Contents/MacOS/Chromium")
    edge = program(root / "Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge")
    chromedriver = program(root / "usr/local/bin/chromedriver")
    assert find_browsers(layout) == [
        BrowserSpec("chromium", chromium, chromedriver),
        BrowserSpec("chrome", chrome, chromedriver),
        BrowserSpec("edge", edge, None),
    ]
    assert resolve_browser("edge", None, layout) == BrowserSpec("edge", edge, None)
    msedgedriver = program(tmp_path / "downloads/msedgedriver")
    assert resolve_browser(None, msedgedriver, layout) == BrowserSpec("edge", edge, msedgedriver)


@posix_only
def test_macos_nothing_installed(tmp_path: Path) -> None:
    layout = mac(tmp_path)
    with pytest.raises(BrowserNotFound) as err:
        resolve_browser("chrome", None, layout)
    message = err.value.format_message()
    assert "chrome is not installed (looked for google-chrome, google-chrome-stable on PATH, " in (
        message
    )
    assert "Google Chrome.app in /Applications and ~/Applications" in message
    assert "apt-get" not in message and "--driver-path" in message


# Windows ---------------------------------------------------------------------------------------
def windows(tmp_path: Path, registry: dict[str, list[str]] | None = None) -> Layout:
    env = {
        "ProgramFiles": str(tmp_path / "Program Files"),
        "ProgramFiles(x86)": str(tmp_path / "Program Files (x86)"),
        "LOCALAPPDATA": str(tmp_path / "Users/jd/AppData/Local"),
        "PATH": f"{tmp_path / 'Windows/system32'};{tmp_path / 'tools'}",
    }
    entries = registry or {}

    def app_paths(executable: str, env: Mapping[str, str]) -> Sequence[str]:
        return [clean_registry_value(value, env) for value in entries.get(executable, [])]

    return Layout(platform="win32", env=env, root=tmp_path / "C", registry=app_paths)


def test_windows_program_files_and_per_user_installs(tmp_path: Path) -> None:
    layout = windows(tmp_path)
    # Windows has no execute bit: any regular file is a program.
    edge = program(tmp_path / "Program Files (x86)/Microsoft/Edge/Application/msedge.exe", 0o644)
    chrome = program(tmp_path / "Users/jd/AppData/Local/Google/Chrome/Application/chrome.exe")
    msedgedriver = program(tmp_path / "tools/msedgedriver.exe", 0o644)
    assert find_browsers(layout) == [
        BrowserSpec("chrome", chrome, None),
        BrowserSpec("edge", edge, msedgedriver),
    ]
    assert resolve_browser(None, None, layout).name == "edge"
    chromedriver = program(tmp_path / "Downloads/chromedriver.exe")
    assert resolve_browser(None, chromedriver, layout) == BrowserSpec(
        "chrome", chrome, chromedriver
    )
    assert resolve_browser("chrome", None, layout) == BrowserSpec("chrome", chrome, None)


def test_windows_app_paths_registry_comes_first(tmp_path: Path) -> None:
    elsewhere = program(tmp_path / "D/Browsers/Chrome/chrome.exe")
    layout = windows(tmp_path, {"chrome.exe": [f'"{elsewhere}"']})  # quoted, as it may be
    program(tmp_path / "Program Files/Google/Chrome/Application/chrome.exe")
    assert resolve_browser("chrome", None, layout).binary == elsewhere


def test_windows_stale_registry_entry_falls_back_to_program_files(tmp_path: Path) -> None:
    layout = windows(tmp_path, {"msedge.exe": [str(tmp_path / "gone/msedge.exe")]})
    edge = program(tmp_path / "Program Files/Microsoft/Edge/Application/msedge.exe")
    assert resolve_browser("msedge", None, layout).binary == edge


def test_windows_nothing_installed_names_where_it_looked(tmp_path: Path) -> None:
    layout = windows(tmp_path)
    with pytest.raises(BrowserNotFound) as err:
        resolve_browser(None, None, layout)
    message = err.value.format_message()
    assert err.value.exit_code == 3
    assert "edge (+msedgedriver): App Paths\\msedge.exe in the registry, " in message
    assert "Microsoft\\Edge\\Application\\msedge.exe under %ProgramFiles%" in message
    assert "Install Google Chrome or Microsoft Edge" in message and "apt-get" not in message


def test_registry_values_are_unquoted_and_expanded() -> None:
    env = {"ProgramFiles": r"C:\Program Files"}
    value = r'"%ProgramFiles%\Google\Chrome\Application\chrome.exe"'
    expected = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
    assert clean_registry_value(value, env) == expected


def test_the_real_registry_is_read_only_on_windows() -> None:
    # On this (non-Windows) system the default registry reader finds nothing.
    assert Layout(platform="linux").registry("chrome.exe", {}) == []


# Overrides and Firefox -------------------------------------------------------------------------
@posix_only
def test_driver_path_must_be_a_program(tmp_path: Path) -> None:
    layout = linux(tmp_path, "/usr/bin")
    program(layout.root / "usr/bin/chromium")
    with pytest.raises(UsageError, match="is not an executable file"):
        resolve_browser(None, tmp_path / "nope", layout)
    with pytest.raises(UsageError, match="is not an executable file"):
        resolve_browser(None, program(tmp_path / "chromedriver", 0o644), layout)


@posix_only
def test_unknown_browser_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="Unknown browser 'netscape'; choose one of chromium"):
        resolve_browser("netscape", None, linux(tmp_path))


@posix_only
def test_firefox_and_geckodriver_are_recognised(tmp_path: Path) -> None:
    layout = linux(tmp_path, "/usr/bin", "/root/.cargo/bin")
    program(layout.root / "usr/bin/firefox-esr")
    gecko = program(layout.root / "root/.cargo/bin/geckodriver")
    assert find_driver(BY_NAME["firefox"], layout) == gecko
    assert "firefox-esr" in BY_NAME["firefox"].commands
