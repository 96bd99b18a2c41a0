"""A private desktop-like session for end-to-end tests: a real OS keyring and an isolated home.

The keyring is the real thing people use on Linux (gnome-keyring's Secret Service on a D-Bus
session bus of our own), so "the password lives only in the OS keyring" is tested for real.
Everything lives in temporary directories: the developer's home, keyring and AWS files are
never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from awscli_saml_sso.browser.chromium import NO_SANDBOX_VARIABLE
from support.browsers import x_display

TOOL = str(Path(sys.executable).with_name("awscli_saml_sso"))


def _wait_for_secret_service(env: dict[str, str], timeout: float = 15.0) -> None:
    """Block until our unlocked keyring owns the Secret Service name on the bus.

    Otherwise the first client could D-Bus-activate a second, locked keyring daemon.
    """
    deadline = time.monotonic() + timeout
    query = [
        "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
        "string:org.freedesktop.secrets",
    ]  # fmt: skip
    while time.monotonic() < deadline:
        answer = subprocess.run(
            query, env={**os.environ, **env}, capture_output=True, text=True, timeout=5, check=False
        )
        if "boolean true" in answer.stdout:
            return
        time.sleep(0.05)
    raise RuntimeError("gnome-keyring did not register the Secret Service in time")


@contextmanager
def keyring_session(root: Path) -> Iterator[dict[str, str]]:
    """Start a D-Bus session bus and an unlocked gnome-keyring; yield the variables to use them."""
    for program in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(program) is None:
            raise RuntimeError(f"{program} is missing: apt-get install dbus gnome-keyring")
    data_home = root / "xdg-data"
    data_home.mkdir(parents=True, mode=0o700)
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    keyring: subprocess.Popen[str] | None = None
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        env = {"DBUS_SESSION_BUS_ADDRESS": address, "XDG_DATA_HOME": str(data_home)}
        keyring = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env},
            text=True,
            start_new_session=True,
        )
        assert keyring.stdin is not None
        keyring.stdin.write("test-only-keyring-password")
        keyring.stdin.close()
        _wait_for_secret_service(env)
        yield env
    finally:
        for process in (keyring, bus):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)


@dataclass
class Sandbox:
    """An isolated user: own HOME, AWS files, tool config dir, and the shared test keyring."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def credentials_file(self) -> Path:
        return self.root / "aws" / "credentials"

    @property
    def config_file(self) -> Path:
        return self.root / "aws" / "config"

    @property
    def config_dir(self) -> Path:
        return self.root / "ass"

    def run(
        self,
        args: Sequence[str],
        *,
        stdin: str = "",
        timeout: float = 180,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed `awscli_saml_sso` as a real process in this sandbox."""
        return subprocess.run(
            [TOOL, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(extra_env or {})},
            check=False,
            # No controlling terminal: prompts (getpass included) read the given stdin.
            start_new_session=True,
        )

    def start(self, args: Sequence[str]) -> subprocess.Popen[str]:
        """Start the tool without waiting (for Ctrl-C and visible-browser tests)."""
        return subprocess.Popen(
            [TOOL, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            start_new_session=True,
        )


def make_sandbox(root: Path, keyring_env: dict[str, str]) -> Sandbox:
    """A sandbox rooted at `root` whose environment never points at the real home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ASS_"))}
    if NO_SANDBOX_VARIABLE in os.environ:  # root's opt-in (support.browsers), kept
        env[NO_SANDBOX_VARIABLE] = os.environ[NO_SANDBOX_VARIABLE]
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(root=root)
    env.update(keyring_env)
    env.update(
        HOME=str(home),
        AWS_SHARED_CREDENTIALS_FILE=str(sandbox.credentials_file),
        AWS_CONFIG_FILE=str(sandbox.config_file),
        ASS_CONFIG_DIR=str(sandbox.config_dir),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    sandbox.env = env
    return sandbox


@pytest.fixture(scope="session")
def keyring_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One private, unlocked OS keyring for the whole test session."""
    with keyring_session(tmp_path_factory.mktemp("keyring")) as env:
        yield env


@pytest.fixture
def sandbox(tmp_path: Path, keyring_env: dict[str, str]) -> Sandbox:
    """A fresh isolated user for one test."""
    return make_sandbox(tmp_path, keyring_env)


@pytest.fixture
def xvfb(sandbox: Sandbox) -> Iterator[str]:
    """A private X display set as DISPLAY in the sandbox, torn down after the test."""
    with x_display() as display:
        sandbox.env["DISPLAY"] = display
        yield display


def leftovers(sandbox: Sandbox) -> list[str]:
    """Processes still running with this sandbox's environment (browser, driver, the tool).

    Matching on the environment rather than the name keeps other tests' browsers out.
    """
    marker = f"ASS_CONFIG_DIR={sandbox.config_dir}"
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(psutil.Error):
            if process.environ().get("ASS_CONFIG_DIR") == marker.split("=", 1)[1]:
                found.append(f"{process.pid} {' '.join(process.info['cmdline'] or [])[:120]}")
    return found


def assert_nothing_left(sandbox: Sandbox, wait: float = 5.0) -> None:
    """After a test: no process of this sandbox (browser, driver, the tool) still runs,
    allowing `wait` seconds for a teardown that is still ending them."""
    deadline = time.monotonic() + wait
    while leftovers(sandbox) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(sandbox) == []
