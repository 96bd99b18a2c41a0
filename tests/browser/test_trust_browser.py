"""What the tool refuses to do, with real Chromium: hostile page text, a browser without its
sandbox as root, and a teardown that must end exactly its own browser (issue 10).
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from support.browsers import browser_processes, launch
from support.fake_idp import PASSWORD, USERNAME, FakeIdP, dummy_saml_response

from awscli_saml_sso.browser import processes
from awscli_saml_sso.browser.autofill import fill_forms
from awscli_saml_sso.browser.chromium import NO_SANDBOX_VARIABLE, sandbox_arguments
from awscli_saml_sso.browser.discovery import BrowserSpec
from awscli_saml_sso.browser.proxy import CaptureProxy
from awscli_saml_sso.errors import SignInError, UsageError
from awscli_saml_sso.idp.prompter import TerminalPrompter, remember
from awscli_saml_sso.idp.store import Settings
from awscli_saml_sso.model import IdentityProvider, RunOptions

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


# -- item 1: the password goes only to origins approved for the IdP ---------------------------


@dataclass
class ScriptedUi:
    """The core's Ui with fixed answers to its yes/no questions (the terminal is ClickUi's)."""

    interactive: bool = True
    confirms: list[bool] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)

    def ask(self, prompt: str, *, default: str | None = None, hide: bool = False) -> str:
        raise AssertionError(f"asked {prompt!r}")

    def confirm(self, prompt: str) -> bool:
        self.shown.append(prompt)
        return self.confirms.pop(0)

    def info(self, message: str) -> None:
        self.shown.append(message)

    def warn(self, message: str) -> None:
        self.shown.append(message)

    def result(self, message: str) -> None:
        self.shown.append(message)


class Redirector:
    """A login URL on its own origin (127.0.0.1, another port) that sends the browser on to
    `target`, as a company portal hands over to a federated IdP."""

    def __init__(self, target: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(303)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/start"

    def __enter__(self) -> Redirector:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    with FakeIdP() as server:
        yield server


def prompter_for(
    settings: Settings, login_url: str, ui: ScriptedUi
) -> tuple[TerminalPrompter, IdentityProvider]:
    idp = settings.save_idp(IdentityProvider("corp", login_url, username=USERNAME))
    opts = RunOptions(idp_nickname="corp", username=USERNAME, env={"ASS_PASSWORD": PASSWORD})
    return TerminalPrompter(opts, idp, ui), idp


def test_an_unapproved_origin_gets_nothing_typed_under_no_prompt(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path, idp: FakeIdP, tmp_path: Path
) -> None:
    settings = Settings(tmp_path / "ass")
    with Redirector(idp.url("/single/")) as portal:
        prompter, _ = prompter_for(settings, portal.url, ScriptedUi(interactive=False))
        with launch(chromium, capture, profile) as driver, pytest.raises(SignInError) as err:
            fill_forms(driver, capture, portal.url, prompter=prompter, autofill=True, timeout=20)
    assert err.value.exit_code == 3
    assert err.value.format_message().startswith(
        f"The sign-in went on to http://127.0.0.1:{idp.port}, which is not approved"
    )
    assert idp.posts("/single/login") == []  # neither username nor password went there


def test_an_approved_origin_is_asked_about_once_and_remembered(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path, idp: FakeIdP, tmp_path: Path
) -> None:
    settings = Settings(tmp_path / "ass")
    with Redirector(idp.url("/single/")) as portal:
        ui = ScriptedUi(confirms=[True])
        prompter, stored = prompter_for(settings, portal.url, ui)
        with launch(chromium, capture, profile) as driver:
            fill_forms(driver, capture, portal.url, prompter=prompter, autofill=True, timeout=30)
        assert capture.captured.is_set()
        assert (
            f"went on from {portal.url.rsplit('/', 1)[0]} to http://127.0.0.1:{idp.port}"
            in (ui.shown[0])
        )
        remember(settings, stored, prompter, ui)
        saved = json.loads(settings.idps_file.read_text())
        assert saved[0]["origins"] == [f"http://127.0.0.1:{idp.port}"]
        # Next time nobody needs to be asked, not even under --no-prompt.
        capture.reset()
        again, _ = prompter_for(settings, portal.url, ScriptedUi(interactive=False))
        with launch(chromium, capture, tmp_path / "fresh-profile") as driver:
            fill_forms(driver, capture, portal.url, prompter=again, autofill=True, timeout=30)
        assert capture.captured.is_set()


# -- item 3: only this sign-in's post by this run's browser is captured -----------------------


def autopost_page(value: str) -> str:
    return (
        "<!doctype html><body onload='document.forms[0].submit()'>"
        "<form method='post' action='https://signin.aws.amazon.com/saml'>"
        f"<input type='hidden' name='SAMLResponse' value='{value}'></form>"
    )


def test_a_post_from_a_page_of_no_origin_is_refused(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path
) -> None:
    planted = dummy_saml_response("planted", "mallory")
    url = "data:text/html;charset=utf-8," + quote(autopost_page(planted))
    with launch(chromium, capture, profile) as driver, pytest.raises(SignInError) as err:
        fill_forms(driver, capture, url, prompter=Silent(), autofill=True, timeout=20)
    assert err.value.format_message().startswith(
        "A page of a page without a web origin (a data: or local page) posted a SAML assertion"
    )
    assert not capture.captured.is_set()


def test_another_local_process_cannot_use_the_proxy(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path, idp: FakeIdP
) -> None:
    with launch(chromium, capture, profile) as driver:
        capture.browser_pid = driver.service.process.pid  # only the browser's process tree
        other = requests.Session()
        other.trust_env = False
        other.proxies = {"https": f"http://127.0.0.1:{capture.port}"}
        capture.allow_origin("https://idp.example.com")
        with pytest.raises(requests.exceptions.ConnectionError):
            other.post(
                "https://signin.aws.amazon.com/saml",
                data={"SAMLResponse": dummy_saml_response("planted", "mallory")},
                headers={"Origin": "https://idp.example.com"},
                verify=str(capture.confdir / "mitmproxy-ca-cert.pem"),
                timeout=10,
            )
        assert not capture.captured.is_set()
        value = fill_forms(
            driver, capture, idp.url("/single/"), prompter=Answers(), autofill=True, timeout=30
        )  # the browser itself still gets through
    assert 'ID="single-alice"' in base64.b64decode(value).decode()


def test_an_oversized_capture_post_is_refused_before_it_is_read(
    capture: CaptureProxy,
) -> None:
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"https": f"http://127.0.0.1:{capture.port}"}
    capture.allow_origin("https://idp.example.com")

    def endless() -> Iterator[bytes]:
        yield b"SAMLResponse="
        for _ in range(10_000):  # would be 640 MiB; the proxy stops at the headers
            yield b"A" * 65536

    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(
            "https://signin.aws.amazon.com/saml",
            data=endless(),
            headers={"Origin": "https://idp.example.com", "Content-Length": str(640 << 20)},
            verify=str(capture.confdir / "mitmproxy-ca-cert.pem"),
            timeout=10,
        )
    assert capture.refusals and "larger than 8 MiB" in capture.refusals[0]
    assert not capture.captured.is_set()


class Answers(Silent):
    """A Prompter that types the fake IdP's account, and only on its own origin."""

    def username(self) -> str:
        return USERNAME

    def password(self) -> str:
        return PASSWORD


# -- item 4: chromedriver's port --------------------------------------------------------------


def test_the_driver_port_answers_nothing_without_the_secret_path(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path
) -> None:
    with launch(chromium, capture, profile) as driver:
        port = driver.service.port
        scanner = requests.Session()
        scanner.trust_env = False
        for path in ("/status", "/sessions", "/session", "/wd/hub/status"):
            reply = scanner.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            assert not reply.ok, (path, reply.text[:200])  # chromedriver: "unhandled request"
        new_session = scanner.post(
            f"http://127.0.0.1:{port}/session", json={"capabilities": {}}, timeout=5
        )
        assert not new_session.ok
        # The residual risk README states: whoever reads the driver's command line (the same
        # user, or anyone where /proc is not restricted) has the path.
        cmdline = driver.service.process.args
        (base,) = [arg.split("=", 1)[1] for arg in cmdline if arg.startswith("--url-base=")]
        assert len(base) > 20
        assert scanner.get(f"http://127.0.0.1:{port}{base}/status", timeout=5).ok
        driver.get("about:blank")  # our own session still works through the path
