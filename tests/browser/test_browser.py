"""The browser: finding it, starting real Chromium behind the capture proxy, tearing it down."""

from __future__ import annotations

import base64
import contextlib
import http.server
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from support.browsers import browser_processes, launch
from support.fake_idp import SelfSignedHTTPS

from awscli_saml_sso.browser import processes
from awscli_saml_sso.browser.discovery import (
    BrowserNotFound,
    BrowserSpec,
    find_browsers,
    resolve_browser,
)
from awscli_saml_sso.browser.proxy import CaptureProxy
from awscli_saml_sso.errors import SignInError, UsageError

AUTOPOST = (
    "<form method=post action='https://signin.aws.amazon.com/saml'>"
    "<input type=hidden name=SAMLResponse value='PHNhbWw+'></form>"
    "<script>document.forms[0].submit()</script>"
)


def data_url(html: str) -> str:
    return "data:text/html;base64," + base64.b64encode(html.encode()).decode()


@pytest.fixture
def fresh_capture(capture: CaptureProxy) -> CaptureProxy:
    return capture


@pytest.fixture
def autopost(fresh_capture: CaptureProxy) -> Iterator[str]:
    """A page on a loopback origin of this sign-in that posts a SAMLResponse to AWS (the
    proxy takes no assertion from a data: page)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = AUTOPOST.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    fresh_capture.allow_origin(origin)
    try:
        yield f"{origin}/"
    finally:
        server.shutdown()
        server.server_close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


# -- finding a browser --------------------------------------------------------------------


def test_find_browsers_lists_debian_chromium() -> None:
    found = find_browsers()
    assert found[0] == BrowserSpec(
        "chromium", Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    )


def test_resolve_browser_default_and_aliases() -> None:
    assert resolve_browser(None, None).name == "chromium"
    assert resolve_browser("Chromium-Browser", None).name == "chromium"


def test_resolve_browser_unknown_name() -> None:
    with pytest.raises(UsageError, match="Unknown browser 'netscape'; choose one of chromium"):
        resolve_browser("netscape", None)


def test_resolve_browser_not_installed() -> None:
    with pytest.raises(
        BrowserNotFound, match=r"edge is not installed \(looked for microsoft-edge"
    ) as err:
        resolve_browser("edge", None)
    assert err.value.exit_code == 3


def test_explicit_driver_path(tmp_path: Path) -> None:
    spec = resolve_browser(None, Path("/usr/bin/chromedriver"))
    assert spec.driver == Path("/usr/bin/chromedriver")
    with pytest.raises(UsageError, match="is not an executable file"):
        resolve_browser(None, tmp_path / "nope")


@pytest.mark.browser
def test_missing_driver_fails_fast_and_clearly(
    proxy: CaptureProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No driver: webdriver-manager tries to download one; offline that must fail quickly.
    monkeypatch.setenv("WDM_LOCAL", "1")
    monkeypatch.chdir(tmp_path)  # WDM_LOCAL caches into ./.wdm, keep it out of the tree
    spec = BrowserSpec("chromium", Path("/usr/bin/chromium"), None)
    began = time.monotonic()
    with (
        pytest.raises(BrowserNotFound, match=r"No chromedriver for chromium .* --driver-path"),
        launch(spec, proxy, tmp_path / "profile"),
    ):
        pass
    assert time.monotonic() - began < 30


# -- starting Chromium --------------------------------------------------------------------


@pytest.mark.browser
def test_headless_capture_and_clean_teardown(
    fresh_capture: CaptureProxy, chromium: BrowserSpec, tmp_path: Path, autopost: str
) -> None:
    profile = tmp_path / "profile"
    began = time.monotonic()
    with launch(chromium, fresh_capture, profile) as driver:
        started = time.monotonic() - began
        assert browser_processes(profile), "the browser should be running"
        arguments = driver.capabilities  # the session exists
        assert arguments["browserName"] in ("chrome", "chromium")
        driver.get(autopost)
        assert fresh_capture.wait_for_saml_response(10) == "PHNhbWw+"
        wait_for(lambda: "Sign-in complete" in driver.page_source)
        assert driver.title == "Sign-in complete"
    print(f"browser start {started:.2f} s, teardown {time.monotonic() - began - started:.2f} s")
    assert started < 10
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    assert browser_processes(profile) == []
    assert ("signin.aws.amazon.com", 443) not in fresh_capture.upstream_connections


@pytest.mark.browser
def test_a_company_proxy_in_the_environment_does_not_cut_the_driver_off(
    fresh_capture: CaptureProxy,
    chromium: BrowserSpec,
    tmp_path: Path,
    autopost: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP(S)_PROXY without NO_PROXY for localhost: Selenium still reaches chromedriver on
    loopback directly (browser.discovery.driver_on_loopback). Nothing listens on port 9."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    profile = tmp_path / "profile"
    with launch(chromium, fresh_capture, profile) as driver:
        driver.get(autopost)
        assert fresh_capture.wait_for_saml_response(10) == "PHNhbWw+"
    assert browser_processes(profile) == []


@pytest.mark.browser
def test_browser_trusts_only_our_proxy_key(
    chromium: BrowserSpec, proxy: CaptureProxy, tmp_path: Path
) -> None:
    # Pinned to another key, Chromium must refuse our proxy's certificates: trust comes from
    # the pin alone, nothing accepts every certificate.
    import hashlib

    other_pin = base64.b64encode(hashlib.sha256(b"another key").digest()).decode()
    proxy.captured.clear()
    with launch(chromium, proxy, tmp_path / "profile", pin=other_pin) as driver:
        driver.get(data_url(AUTOPOST))
        wait_for(lambda: "signin.aws.amazon.com" in driver.current_url)
        wait_for(lambda: "ERR_CERT_AUTHORITY_INVALID" in driver.page_source)
        assert not proxy.captured.is_set()
    assert browser_processes(tmp_path / "profile") == []


@pytest.mark.browser
def test_upstream_certificate_is_verified_through_the_browser(
    chromium: BrowserSpec, proxy: CaptureProxy, tmp_path: Path
) -> None:
    with (
        SelfSignedHTTPS(tmp_path) as server,
        launch(chromium, proxy, tmp_path / "profile") as driver,
    ):
        driver.get(f"https://localhost:{server.port}/")
        wait_for(lambda: "ertificate" in driver.page_source)  # mitmproxy's 502 page
        assert "self-signed content" not in driver.page_source


@pytest.mark.browser
def test_profile_in_use_fails_fast(
    chromium: BrowserSpec, proxy: CaptureProxy, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    with launch(chromium, proxy, profile):
        began = time.monotonic()
        with (
            pytest.raises(SignInError, match="Another sign-in is using the browser profile"),
            launch(chromium, proxy, profile),
        ):
            pass
        # A guard against waiting out a time limit, not a measurement (the benchmark measures).
        assert time.monotonic() - began < 10
    assert browser_processes(profile) == []


@pytest.mark.browser
def test_stale_singleton_lock_is_ignored(
    chromium: BrowserSpec, fresh_capture: CaptureProxy, tmp_path: Path, autopost: str
) -> None:
    profile = tmp_path / "profile"
    profile.mkdir(mode=0o755)
    # What a crashed Chromium leaves behind, pointing at a dead process on another host.
    (profile / "SingletonLock").symlink_to("some-other-host-999999")
    (profile / "SingletonSocket").symlink_to("/tmp/nonexistent-dir/SingletonSocket")
    with launch(chromium, fresh_capture, profile) as driver:
        driver.get(autopost)
        assert fresh_capture.wait_for_saml_response(10) == "PHNhbWw+"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    assert browser_processes(profile) == []


@pytest.mark.browser
def test_teardown_after_an_exception(
    chromium: BrowserSpec, proxy: CaptureProxy, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    with pytest.raises(RuntimeError, match="boom"), launch(chromium, proxy, profile):
        assert browser_processes(profile)
        raise RuntimeError("boom")
    assert browser_processes(profile) == []


@pytest.mark.browser
def test_teardown_after_keyboard_interrupt(
    chromium: BrowserSpec, proxy: CaptureProxy, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    with pytest.raises(KeyboardInterrupt), launch(chromium, proxy, profile) as driver:
        driver.get(data_url("<p>working</p>"))
        # A real SIGINT, as Ctrl-C delivers it to this process.
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        time.sleep(5)
    assert browser_processes(profile) == []


@pytest.mark.browser
def test_teardown_when_the_browser_died(
    chromium: BrowserSpec, proxy: CaptureProxy, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    with launch(chromium, proxy, profile):
        for pid in browser_processes(profile):
            if pid.endswith("chromium"):
                os.kill(int(pid.split()[0]), signal.SIGKILL)
    assert browser_processes(profile) == []


@pytest.mark.browser
def test_teardown_when_the_driver_hangs(
    chromium: BrowserSpec, proxy: CaptureProxy, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    began = 0.0
    with launch(chromium, proxy, profile) as driver:
        driver_pid = driver.service.process.pid
        os.kill(driver_pid, signal.SIGSTOP)  # quit() can no longer get an answer
        began = time.monotonic()
    assert time.monotonic() - began < 15
    assert browser_processes(profile) == []


@pytest.mark.browser
def test_selenium_manager_is_never_consulted(
    chromium: BrowserSpec,
    fresh_capture: CaptureProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autopost: str,
) -> None:
    # With a driver in hand, Selenium must not run its manager (which would go to the network).
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("Selenium Manager was called")

    monkeypatch.setattr(SeleniumManager, "binary_paths", forbidden)
    with launch(chromium, fresh_capture, tmp_path / "profile") as driver:
        driver.get(autopost)
        assert fresh_capture.wait_for_saml_response(10) == "PHNhbWw+"


def _alive(pid: int) -> bool:
    """Running (zombies, dead but not yet reaped, do not count)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


@pytest.mark.browser
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_leftovers_when_the_tool_itself_is_killed(
    proxy: CaptureProxy, tmp_path: Path, sig: signal.Signals
) -> None:
    """No cleanup code runs on SIGKILL (nor on an unhandled SIGTERM): the kernel and the
    DevTools pipe must take the driver and the browser down anyway."""
    import subprocess
    import sys
    import textwrap

    profile = tmp_path / "profile"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from awscli_saml_sso.browser.chromium import open_browser
        from awscli_saml_sso.browser.discovery import resolve_browser
        with open_browser(resolve_browser(None, None), headless=True,
                          profile_dir=Path({str(profile)!r}), proxy_port={proxy.port},
                          ca_spki_sha256={proxy.ca_spki_sha256!r}) as driver:
            print(driver.service.process.pid, flush=True)
            time.sleep(60)
        """
    )
    tool = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert tool.stdout is not None
    driver_pid = int(tool.stdout.readline())
    assert _alive(driver_pid) and browser_processes(profile)
    tool.send_signal(sig)
    tool.wait(10)
    wait_for(lambda: not _alive(driver_pid) and not browser_processes(profile), timeout=10)


def on_profile(profile: Path) -> list[int]:
    """Live processes on exactly `profile` (browser_processes also counts this test's own
    drivers, which include the surviving browser's)."""
    found = []
    for process in processes.profile_users(profile):
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
    return found


def _guardians(profile: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if "awscli_saml_sso.browser.guardian" in cmdline and str(profile) in cmdline:
            found.append(process)
    return found


@pytest.mark.browser
def test_guardian_ends_the_browser_of_a_killed_tool_and_spares_another_profile(
    proxy: CaptureProxy, tmp_path: Path
) -> None:
    """macOS and Windows have no parent-death signal: there the guardian process, reading a
    pipe from the tool, ends the driver and the browser when the tool dies. The same code
    runs here with Linux's parent-death signal switched off, and the tool is SIGKILLed."""
    import subprocess
    import sys
    import textwrap

    mine, theirs = tmp_path / "corp", tmp_path / "corp2"  # a prefix of the other's path
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from awscli_saml_sso.browser import chromium
        from awscli_saml_sso.browser.discovery import resolve_browser
        chromium._die_with_parent = lambda: None  # as on macOS and Windows
        with chromium.open_browser(resolve_browser(None, None), headless=True,
                                   profile_dir=Path({str(theirs)!r}), proxy_port={proxy.port},
                                   ca_spki_sha256={proxy.ca_spki_sha256!r}) as driver:
            print(driver.service.process.pid, flush=True)
            time.sleep(60)
        """
    )
    with launch(resolve_browser("chromium", None), proxy, mine) as survivor:
        tool = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert tool.stdout is not None
        driver_pid = int(tool.stdout.readline())
        assert _alive(driver_pid) and on_profile(theirs)
        assert len(_guardians(theirs)) == 1
        tool.kill()
        tool.wait(10)
        wait_for(lambda: not _alive(driver_pid) and not on_profile(theirs), timeout=15)
        wait_for(lambda: not _guardians(theirs))
        # The other profile's browser is untouched and still answers.
        assert browser_processes(mine)
        survivor.get(data_url("<title>still here</title>"))
        wait_for(lambda: survivor.title == "still here")
    assert browser_processes(mine) == []


@pytest.mark.browser
def test_guardian_leaves_quietly_after_a_normal_teardown(
    chromium: BrowserSpec, proxy: CaptureProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from awscli_saml_sso.browser import chromium as chromium_module

    monkeypatch.setattr(chromium_module, "_die_with_parent", lambda: None)
    profile = tmp_path / "profile"
    with launch(chromium, proxy, profile) as driver:
        (guardian,) = _guardians(profile)
        driver_process = psutil.Process(driver.service.process.pid)
        # Selenium Manager, were anything to start it, is told not to send statistics.
        assert driver_process.environ().get("SE_AVOID_STATS") == "true"
    guardian.wait(5)
    assert browser_processes(profile) == [] and _guardians(profile) == []
