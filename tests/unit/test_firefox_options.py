"""Firefox's options and preferences as built for a sign-in (no browser is started)."""

from __future__ import annotations

from pathlib import Path

from awscli_saml_sso.browser.discovery import BrowserSpec
from awscli_saml_sso.browser.firefox import firefox_options, firefox_prefs

SPEC = BrowserSpec("firefox", Path("/usr/bin/firefox"), Path("/usr/bin/geckodriver"))


def test_every_request_goes_to_our_proxy_and_nowhere_else(tmp_path: Path) -> None:
    prefs = firefox_prefs(tmp_path, 4321)
    assert prefs["network.proxy.type"] == 1
    assert (prefs["network.proxy.http"], prefs["network.proxy.http_port"]) == ("127.0.0.1", 4321)
    assert (prefs["network.proxy.ssl"], prefs["network.proxy.ssl_port"]) == ("127.0.0.1", 4321)
    assert prefs["network.proxy.no_proxies_on"] == ""
    assert prefs["network.proxy.allow_hijacking_localhost"] is True
    assert prefs["network.proxy.failover_direct"] is False
    assert prefs["network.trr.mode"] == 5


def test_no_secret_or_file_leaves_the_profile(tmp_path: Path) -> None:
    prefs = firefox_prefs(tmp_path, 4321)
    assert prefs["signon.rememberSignons"] is False
    assert prefs["browser.cache.disk.enable"] is False
    assert prefs["browser.download.dir"] == str(tmp_path / "downloads")
    assert prefs["security.enterprise_roots.enabled"] is False


def test_options_use_the_profile_in_place_and_accept_no_certificate_blindly(
    tmp_path: Path,
) -> None:
    options = firefox_options(SPEC, headless=True, profile_dir=tmp_path, proxy_port=4321)
    capabilities = options.to_capabilities()
    assert capabilities["acceptInsecureCerts"] is False
    assert capabilities["moz:debuggerAddress"] is False
    arguments = capabilities["moz:firefoxOptions"]["args"]
    assert arguments[arguments.index("-profile") + 1] == str(tmp_path)
    assert "-headless" in arguments
    visible = firefox_options(SPEC, headless=False, profile_dir=tmp_path, proxy_port=4321)
    assert "-headless" not in visible.to_capabilities()["moz:firefoxOptions"]["args"]
