"""Browser test helpers, one of each: the capture proxy, Chromium, a launch, an X display,
xdotool, and the processes a browser may leave behind (the product's own process helpers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from awscli_saml_sso.browser import processes
from awscli_saml_sso.browser.ca import cert_path
from awscli_saml_sso.browser.chromium import NO_SANDBOX_VARIABLE
from awscli_saml_sso.browser.discovery import BrowserSpec, resolve_browser
from awscli_saml_sso.browser.launch import open_browser
from awscli_saml_sso.browser.proxy import CaptureProxy

if hasattr(os, "geteuid") and os.geteuid() == 0:
    # The tests run as root (CI, containers): Chromium then needs the explicit opt-in to run
    # without its sandbox. Set for in-process browsers and passed on to sandboxed runs.
    os.environ.setdefault(NO_SANDBOX_VARIABLE, "1")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaptureProxy]:
    """One capture proxy for a test module (reset it per test with `capture`)."""
    # A generous start limit: on a loaded machine importing mitmproxy alone can take 10 s.
    with CaptureProxy(tmp_path_factory.mktemp("capture") / "ca", start_timeout=60) as running:
        yield running


@pytest.fixture
def capture(proxy: CaptureProxy) -> CaptureProxy:
    """The module's proxy, reset for one sign-in."""
    proxy.reset()
    return proxy


@pytest.fixture
def chromium() -> BrowserSpec:
    return resolve_browser("chromium", None)


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[Path]:
    """A browser profile directory; the test fails if a browser on it survives the test."""
    path = tmp_path / "profile"
    yield path
    assert browser_processes(path) == [], "a browser process survived the test"


def launch(
    spec: BrowserSpec,
    proxy: CaptureProxy,
    profile: Path,
    *,
    headless: bool = True,
    pin: str | None = None,
    ca_cert: Path | None = None,
) -> Any:
    """open_browser behind `proxy`, trusting its CA unless `pin` (Chromium) or `ca_cert`
    (Firefox) names another one."""
    return open_browser(
        spec,
        headless=headless,
        profile_dir=profile,
        proxy_port=proxy.port,
        ca_spki_sha256=pin or proxy.ca_spki_sha256,
        ca_cert=ca_cert or cert_path(proxy.confdir),
    )


def browser_processes(profile_dir: Path) -> list[str]:
    """Live processes a browser run may leave: those on exactly `profile_dir`, and any
    driver this test process started. Zombies (dead, not yet reaped) do not count."""
    found = {p.pid: p for p in processes.profile_users(Path(profile_dir))}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.name().startswith(("chromedriver", "geckodriver", "msedgedriver")):
                    found[child.pid] = child
    described = []
    for pid, process in sorted(found.items()):
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE:
                described.append(f"{pid} {process.name()}")
    return described


@contextlib.contextmanager
def x_display() -> Iterator[str]:
    """A private X display (Xvfb, no TCP), stopped afterwards; its DISPLAY value."""
    for program in ("Xvfb", "xdotool"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is missing: apt-get install xvfb xdotool")
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield f":{server.stdout.readline().strip()}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private X display set as DISPLAY for this process (in-process browser tests)."""
    with x_display() as value:
        monkeypatch.setenv("DISPLAY", value)
        yield value


def xdotool(display: str, *args: str) -> str:
    """Drive the X display as a person would (keyboard and mouse)."""
    return subprocess.run(
        ["xdotool", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={**os.environ, "DISPLAY": display},
    ).stdout.strip()
