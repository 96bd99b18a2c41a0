"""What the tool refuses to do, with real Chromium: hostile page text, a browser without its
sandbox as root, and a teardown that must end exactly its own browser (issue 10).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from support.browsers import browser_processes, launch

from awscli_saml_sso.browser import processes
from awscli_saml_sso.browser.autofill import fill_forms
from awscli_saml_sso.browser.chromium import NO_SANDBOX_VARIABLE, sandbox_arguments
from awscli_saml_sso.browser.discovery import BrowserSpec
from awscli_saml_sso.browser.proxy import CaptureProxy
from awscli_saml_sso.errors import SignInError, UsageError

pytestmark = pytest.mark.browser

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class Silent:
    """A Prompter for pages that must never ask anything."""

    def username(self) -> str:
        raise AssertionError("asked for a username")

    def password(self) -> str:
        raise AssertionError("asked for a password")

    def mfa_code(self, hint: str) -> str:
        raise AssertionError("asked for a code")

    def info(self, message: str) -> None:
        raise AssertionError(f"announced {message!r}")

    def approve_origin(self, origin: str) -> bool:
        return False


# -- item 6: IdP text reaches the terminal only cleaned -------------------------------------

HOSTILE_ERROR = "Access denied\x1b]0;pwned\x07\x1b[2J\x1bc\u202e for you\x9b31m."


def test_idp_error_text_loses_its_escape_sequences(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path
) -> None:
    page = (
        "<!doctype html><title>Error</title>"
        f"<div class='alert alert-danger' role='alert'>{HOSTILE_ERROR}</div>"
    )
    with launch(chromium, capture, profile) as driver, pytest.raises(SignInError) as err:
        url = "data:text/html;charset=utf-8," + quote(page)
        try:
            fill_forms(driver, capture, url, prompter=Silent(), autofill=True, timeout=20)
        finally:
            shown = driver.execute_script("return document.body.innerText")
    assert "\x1b" in shown  # the page really carried the escapes
    message = err.value.format_message()
    assert message == "The identity provider shows an error: Access denied for you."


# -- item 5: no sandbox only on request -----------------------------------------------------


@pytest.mark.skipif(not ROOT, reason="the sandbox question arises only as root")
def test_as_root_the_browser_starts_only_with_the_opt_in(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(NO_SANDBOX_VARIABLE, raising=False)
    with pytest.raises(UsageError) as err, launch(chromium, capture, profile):
        pass
    assert err.value.exit_code == 2
    assert NO_SANDBOX_VARIABLE in err.value.format_message()
    assert browser_processes(profile) == []
    monkeypatch.setenv(NO_SANDBOX_VARIABLE, "1")
    assert sandbox_arguments() == ["--no-sandbox"]
    with launch(chromium, capture, profile) as driver:
        assert driver.capabilities["browserName"] in ("chrome", "chromium")


@pytest.mark.skipif(ROOT, reason="an ordinary user keeps the sandbox")
def test_an_ordinary_user_keeps_the_sandbox() -> None:
    assert sandbox_arguments() == []


# -- item 8: teardown ends exactly its own browser ------------------------------------------


def test_ending_profile_corp_leaves_corp2_running(
    chromium: BrowserSpec, capture: CaptureProxy, tmp_path: Path
) -> None:
    corp, corp2 = tmp_path / "corp", tmp_path / "corp2"
    with launch(chromium, capture, corp2) as survivor:
        with launch(chromium, capture, corp):
            assert processes.profile_users(corp) and processes.profile_users(corp2)
        assert processes.profile_users(corp) == []
        assert processes.profile_users(corp2), "tearing down corp ended corp2's browser"
        survivor.get("about:blank")  # corp2's session still answers
        assert survivor.title == ""
    assert browser_processes(corp2) == []
