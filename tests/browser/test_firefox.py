"""Firefox: real firefox-esr and geckodriver behind the capture proxy, trusting our CA only."""

from __future__ import annotations

import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from support.browsers import browser_processes, launch
from support.fake_idp import FakeIdP, SelfSignedHTTPS

from awscli_saml_sso.browser import firefox
from awscli_saml_sso.browser.ca import cert_path, ensure_ca
from awscli_saml_sso.browser.discovery import BrowserNotFound, BrowserSpec, resolve_browser
from awscli_saml_sso.browser.proxy import CaptureProxy
from awscli_saml_sso.model import origin_of

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def firefox_spec() -> BrowserSpec:
    for program in ("firefox", "geckodriver", "certutil"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is missing (see README: Firefox)")
    return resolve_browser("firefox", None)


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    with FakeIdP() as server:
        yield server


@pytest.fixture
def capture(proxy: CaptureProxy, idp: FakeIdP) -> CaptureProxy:
    """The module's proxy, reset, taking the fake IdP's posts (an origin of this sign-in)."""
    proxy.reset()
    proxy.allow_origin(origin_of(idp.url("/")))
    return proxy


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def drivers_args() -> list[list[str]]:
    """The command lines of the geckodrivers this test process runs now."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name().startswith("geckodriver"):
                found.append(child.cmdline())
        except psutil.Error:
            continue
    return found


def trusted(profile: Path) -> dict[str, str]:
    return firefox.trusted_nicknames("certutil", profile)


def test_firefox_is_found_with_geckodriver(firefox_spec: BrowserSpec) -> None:
    assert resolve_browser("firefox-esr", None) == firefox_spec
    assert firefox_spec.driver is not None and firefox_spec.driver.name == "geckodriver"


def test_missing_geckodriver_fails_fast_and_clearly(
    firefox_spec: BrowserSpec, proxy: CaptureProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No driver: webdriver-manager tries to download one; offline that must fail quickly.
    monkeypatch.setenv("WDM_LOCAL", "1")
    monkeypatch.chdir(tmp_path)  # WDM_LOCAL caches into ./.wdm, keep it out of the tree
    spec = BrowserSpec("firefox", firefox_spec.binary, None)
    with (
        pytest.raises(
            BrowserNotFound,
            match=r"No geckodriver for firefox .* `cargo install --locked geckodriver`",
        ),
        launch(spec, proxy, tmp_path / "profile"),
    ):
        pass


def test_headless_capture_trusting_our_ca_only(
    firefox_spec: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    with launch(firefox_spec, capture, profile) as driver:
        assert browser_processes(profile), "Firefox should be running on the profile"
        assert driver.capabilities["acceptInsecureCerts"] is False
        assert driver.capabilities.get("moz:debuggerAddress") in (None, False)
        # The sign-in session has no system access; only a provisioning session would.
        assert all("--allow-system-access" not in args for args in drivers_args())
        driver.get(idp.url("/twostep/done"))  # an IdP's auto-posting form
        assert capture.wait_for_saml_response(60)
        wait_for(lambda: driver.title == "Sign-in complete")
    assert browser_processes(profile) == []
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    # Our CA, as a CA for web sites only, is the one certificate the profile was given.
    assert trusted(profile) == {firefox.ca_nickname(cert_path(capture.confdir)): "C,,"}
    # From start to quit, Firefox reached nothing but the IdP: no background traffic, and
    # the assertion never left.
    assert set(capture.upstream_connections) == {("127.0.0.1", idp.port)}


def test_a_company_proxy_in_the_environment_does_not_cut_the_driver_off(
    firefox_spec: BrowserSpec,
    capture: CaptureProxy,
    idp: FakeIdP,
    profile: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP(S)_PROXY set without NO_PROXY for localhost, as on many company desktops: Selenium
    must still reach geckodriver on loopback directly (it once sent every command to the
    proxy). The proxy here is a port where nothing listens."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    with launch(firefox_spec, capture, profile) as driver:
        driver.get(idp.url("/twostep/done"))
        assert capture.wait_for_saml_response(60)
    assert browser_processes(profile) == []


def test_a_profile_trusting_another_ca_refuses_our_proxy(
    firefox_spec: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path, tmp_path: Path
) -> None:
    # Trust comes from the imported CA alone: given another CA, Firefox must refuse the
    # proxy's certificates (nothing accepts every certificate).
    other = tmp_path / "other-ca"
    ensure_ca(other)
    with launch(firefox_spec, capture, profile, ca_cert=cert_path(other)) as driver:
        driver.get(idp.url("/twostep/done"))
        # Firefox shows its certificate error page in place of the post's answer.
        error_page = "return document.documentURI.startsWith('about:certerror?e=nssBadCert')"
        wait_for(lambda: bool(driver.execute_script(error_page)))
        assert not capture.captured.is_set()
    assert browser_processes(profile) == []


def test_a_renewed_ca_replaces_the_old_one(
    firefox_spec: BrowserSpec, capture: CaptureProxy, profile: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca"
    ensure_ca(other)
    firefox.import_ca_with_certutil("certutil", _private(profile), cert_path(other))
    firefox.import_ca_with_certutil("certutil", profile, cert_path(capture.confdir))
    assert trusted(profile) == {firefox.ca_nickname(cert_path(capture.confdir)): "C,,"}


def test_upstream_with_an_untrusted_certificate_is_refused(
    firefox_spec: BrowserSpec, capture: CaptureProxy, profile: Path, tmp_path: Path
) -> None:
    with (
        SelfSignedHTTPS(tmp_path) as server,
        launch(firefox_spec, capture, profile) as driver,
    ):
        driver.get(f"https://localhost:{server.port}/")
        wait_for(lambda: "ertificate" in driver.page_source)  # mitmproxy's 502 page
        assert "self-signed content" not in driver.page_source
    assert browser_processes(profile) == []


def test_visible_capture_under_xvfb(
    firefox_spec: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path, display: str
) -> None:
    with launch(firefox_spec, capture, profile, headless=False) as driver:
        driver.get(idp.url("/twostep/done"))
        assert capture.wait_for_saml_response(60)
    assert browser_processes(profile) == []


def test_without_certutil_a_provisioning_session_imports_the_ca_once(
    firefox_spec: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    def sign_in() -> list[list[str]]:
        with firefox.open_firefox(
            firefox_spec,
            headless=True,
            profile_dir=profile,
            proxy_port=capture.port,
            ca_cert=cert_path(capture.confdir),
            certutil=None,
        ) as driver:
            seen = drivers_args()
            driver.get(idp.url("/twostep/done"))
            assert capture.wait_for_saml_response(60)
        return seen

    assert all("--allow-system-access" not in args for args in sign_in())
    stamp = profile / "awscli_saml_sso-ca.sha256"
    first = stamp.stat().st_mtime_ns
    capture.reset()
    capture.allow_origin(origin_of(idp.url("/")))
    sign_in()
    assert stamp.stat().st_mtime_ns == first  # the profile and CA were known: no provisioning
    assert browser_processes(profile) == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_firefox_left_when_the_tool_itself_is_killed(
    firefox_spec: BrowserSpec, capture: CaptureProxy, profile: Path, sig: signal.Signals
) -> None:
    """No cleanup code runs: geckodriver's parent-death SIGTERM must take Firefox down."""
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from awscli_saml_sso.browser.discovery import resolve_browser
        from awscli_saml_sso.browser.firefox import open_firefox
        with open_firefox(resolve_browser("firefox", None), headless=True,
                          profile_dir=Path({str(profile)!r}), proxy_port={capture.port},
                          ca_cert=Path({str(cert_path(capture.confdir))!r})) as driver:
            print(driver.service.process.pid, flush=True)
            time.sleep(120)
        """
    )
    tool = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert tool.stdout is not None
        driver_pid = int(tool.stdout.readline())
        assert browser_processes(profile), "Firefox should be running on the profile"
        tool.send_signal(sig)
        tool.wait(10)
        wait_for(lambda: not _running(driver_pid) and not browser_processes(profile))
    finally:
        tool.kill()
        tool.wait(10)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path
