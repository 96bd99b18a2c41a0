"""Signing in with real Chromium: generic autofill against IdP-shaped pages and real Keycloak."""

from __future__ import annotations

import base64
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.browsers import browser_processes, launch, xdotool
from support.fake_idp import OTP_CODE, PASSWORD, PUSH_NUMBER, USERNAME, FakeIdP

from awscli_saml_sso.browser.autofill import BROWSER_CLOSED, fill_forms
from awscli_saml_sso.browser.discovery import BrowserSpec
from awscli_saml_sso.browser.proxy import CaptureProxy
from awscli_saml_sso.errors import SignInError

pytestmark = pytest.mark.browser


@dataclass
class Recorder:
    """A Prompter that answers from fixed values and records every call."""

    user: str = USERNAME
    secret: str = PASSWORD
    code: Callable[[], str] = lambda: OTP_CODE
    calls: list[Any] = field(default_factory=list)

    def username(self) -> str:
        self.calls.append("username")
        return self.user

    def password(self) -> str:
        self.calls.append("password")
        return self.secret

    def mfa_code(self, hint: str) -> str:
        self.calls.append(("mfa_code", hint))
        return self.code()

    def info(self, message: str) -> None:
        self.calls.append(("info", message))

    def approve_origin(self, origin: str) -> bool:
        return False  # these IdPs never leave their login URL's origin


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    with FakeIdP(push_delay=2.5) as server:
        yield server


def run_sign_in(
    spec: BrowserSpec,
    proxy: CaptureProxy,
    profile: Path,
    url: str,
    prompter: Recorder,
    *,
    timeout: float = 30,
    debug_dir: Path | None = None,
) -> str:
    with launch(spec, proxy, profile) as driver:
        return fill_forms(
            driver,
            proxy,
            url,
            prompter=prompter,
            autofill=True,
            timeout=timeout,
            debug_dir=debug_dir,
        )


def decoded(saml_response: str) -> str:
    return base64.b64decode(saml_response).decode()


def no_aws_connection(proxy: CaptureProxy) -> bool:
    return not any(host.startswith("signin.") for host, _ in proxy.upstream_connections)


# -- fake IdP: page shapes ----------------------------------------------------------------


def test_single_page_form(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    before = len(idp.posts("/single/login"))
    prompter = Recorder()
    result = run_sign_in(chromium, capture, profile, idp.url("/single/"), prompter)
    assert 'ID="single-alice"' in decoded(result)
    assert prompter.calls == ["username", "password"]
    assert len(idp.posts("/single/login")) == before + 1
    assert no_aws_connection(capture)


def test_localhost_idp_goes_through_the_proxy(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    url = f"http://localhost:{idp.port}/single/"
    result = run_sign_in(chromium, capture, profile, url, Recorder())
    assert 'ID="single-alice"' in decoded(result)
    # <-loopback> in the bypass list: the IdP on localhost was reached through the proxy.
    assert ("localhost", idp.port) in capture.upstream_connections


def test_two_step_page_with_vendor_ids(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    prompter = Recorder()
    result = run_sign_in(chromium, capture, profile, idp.url("/twostep/"), prompter)
    assert 'ID="twostep-alice"' in decoded(result)
    assert prompter.calls == ["username", "password"]


def test_one_time_code_step(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    prompter = Recorder()
    result = run_sign_in(chromium, capture, profile, idp.url("/mfa/"), prompter)
    assert 'ID="mfa-alice"' in decoded(result)
    assert prompter.calls == [
        "username",
        "password",
        ("mfa_code", "Enter the code from your authenticator app"),
    ]


def test_push_page_is_announced_once_then_waited_for(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    prompter = Recorder()
    began = time.monotonic()
    result = run_sign_in(chromium, capture, profile, idp.url("/push/"), prompter)
    assert 'ID="push-alice"' in decoded(result)
    assert time.monotonic() - began >= idp.push_delay
    infos = [c[1] for c in prompter.calls if c[0] == "info"]
    assert len(infos) == 1
    assert f"enter the number {PUSH_NUMBER}" in infos[0]
    assert prompter.calls[:2] == ["username", "password"]


@pytest.mark.parametrize(
    ("path", "post_path", "message"),
    [
        ("/single/", "/single/login", "Invalid username or password."),
        ("/twostep/", "/twostep/check", "Your account or password is incorrect."),
    ],
)
def test_wrong_password_shows_the_idp_text_and_posts_once(
    chromium: BrowserSpec,
    capture: CaptureProxy,
    idp: FakeIdP,
    profile: Path,
    path: str,
    post_path: str,
    message: str,
) -> None:
    before = len(idp.posts(post_path))
    prompter = Recorder(secret="not-the-password")
    with launch(chromium, capture, profile) as driver:
        began = time.monotonic()
        with pytest.raises(SignInError) as err:
            fill_forms(driver, capture, idp.url(path), prompter=prompter, autofill=True, timeout=30)
        elapsed = time.monotonic() - began
    assert err.value.format_message() == message
    assert err.value.exit_code == 3
    assert elapsed < 5
    assert len(idp.posts(post_path)) == before + 1
    assert prompter.calls.count("password") == 1


def test_wrong_code_shows_the_idp_text(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    prompter = Recorder(code=lambda: "000000")
    with pytest.raises(SignInError) as err:
        run_sign_in(chromium, capture, profile, idp.url("/mfa/"), prompter)
    assert err.value.format_message() == "That code didn't work. Check the code and try again."


def test_live_session_means_no_form_is_touched(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    first = Recorder()
    run_sign_in(chromium, capture, profile, idp.url("/single/"), first)
    assert first.calls == ["username", "password"]
    capture.captured.clear()
    # A new browser on the same profile: the IdP's session cookie survived the restart.
    second = Recorder()
    result = run_sign_in(chromium, capture, profile, idp.url("/single/"), second)
    assert 'ID="single-alice"' in decoded(result)
    assert second.calls == []


def test_timeout_names_the_page_and_saves_it(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path, tmp_path: Path
) -> None:
    debug_dir = tmp_path / "debug"
    began = time.monotonic()
    with pytest.raises(SignInError) as err:
        run_sign_in(
            chromium,
            capture,
            profile,
            idp.url("/slow/?code=secret"),
            Recorder(),
            timeout=3,
            debug_dir=debug_dir,
        )
    assert time.monotonic() - began < 10
    message = err.value.format_message()
    assert message.startswith("Sign-in did not finish within 3 seconds; it was stuck on the page")
    assert f'"Please wait" at {idp.url("/slow/")}.' in message
    assert "secret" not in message  # query strings often carry one-time codes
    saved = list(debug_dir.iterdir())
    assert len(saved) == 1 and str(saved[0]) in message
    assert stat.S_IMODE(saved[0].stat().st_mode) == 0o600
    assert "Loading your organisation" in saved[0].read_text()


def test_timeout_without_debug_dir(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    with pytest.raises(SignInError, match="stuck on the page") as err:
        run_sign_in(chromium, capture, profile, idp.url("/slow/"), Recorder(), timeout=1)
    assert "saved" not in err.value.format_message()


def test_error_page_without_fields_fails_fast(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    began = time.monotonic()
    with pytest.raises(SignInError) as err:
        run_sign_in(chromium, capture, profile, idp.url("/broken/"), Recorder())
    assert err.value.format_message() == "The identity provider shows an error: Invalid Request"
    assert time.monotonic() - began < 8


def test_unreachable_idp_fails_fast(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    began = time.monotonic()
    with pytest.raises(SignInError, match=r"^The capture proxy could not reach 127\.0\.0\.1: "):
        run_sign_in(chromium, capture, profile, f"http://127.0.0.1:{port}/idp", Recorder())
    assert time.monotonic() - began < 8


def test_idp_with_an_untrusted_certificate_fails_fast(
    chromium: BrowserSpec, capture: CaptureProxy, profile: Path, tmp_path: Path
) -> None:
    from support.fake_idp import SelfSignedHTTPS

    with SelfSignedHTTPS(tmp_path) as server, pytest.raises(SignInError) as err:
        run_sign_in(chromium, capture, profile, f"https://localhost:{server.port}/", Recorder())
    message = err.value.format_message()
    assert message.startswith("The capture proxy could not reach localhost: ")
    assert "certificate" in message.lower()


def test_prompter_errors_pass_through(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    from awscli_saml_sso.errors import UsageError

    class Refusing(Recorder):
        def password(self) -> str:
            raise UsageError("No password stored and --no-prompt forbids asking.")

    with pytest.raises(UsageError, match="--no-prompt forbids asking"):
        run_sign_in(chromium, capture, profile, idp.url("/single/"), Refusing())


# -- the person at the keyboard -----------------------------------------------------------


def test_manual_mode_waits_for_the_person(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    prompter = Recorder()
    with launch(chromium, capture, profile) as driver:

        def person() -> None:
            time.sleep(1.5)
            driver.execute_script(
                "document.getElementById('username').value = arguments[0];"
                "document.getElementById('password').value = arguments[1];"
                "document.getElementById('kc-login').click();",
                USERNAME,
                PASSWORD,
            )

        threading.Thread(target=person, daemon=True).start()
        result = fill_forms(
            driver, capture, idp.url("/single/"), prompter=prompter, autofill=False, timeout=20
        )
    assert 'ID="single-alice"' in decoded(result)
    assert prompter.calls == []


@pytest.mark.parametrize("how", ["close-window", "kill-browser"])
@pytest.mark.parametrize("autofill", [False, True])
def test_closing_the_browser_ends_the_sign_in(
    chromium: BrowserSpec,
    capture: CaptureProxy,
    idp: FakeIdP,
    profile: Path,
    how: str,
    autofill: bool,
) -> None:
    with launch(chromium, capture, profile) as driver:

        def close() -> None:
            time.sleep(1.5)
            if how == "close-window":
                driver.close()
            else:
                for entry in browser_processes(profile):
                    pid, name = entry.split()
                    if name == "chromium":
                        os.kill(int(pid), signal.SIGKILL)

        threading.Thread(target=close, daemon=True).start()
        began = time.monotonic()
        with pytest.raises(SignInError) as err:
            fill_forms(
                driver,
                capture,
                idp.url("/slow/"),
                prompter=Recorder(),
                autofill=autofill,
                timeout=30,
            )
        elapsed = time.monotonic() - began
    assert err.value.format_message() == BROWSER_CLOSED
    assert elapsed < 6


def test_ctrl_c_at_a_prompt_tears_everything_down(
    chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    class Interrupting(Recorder):
        def password(self) -> str:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sign_in(chromium, capture, profile, idp.url("/single/"), Interrupting())


# -- real Keycloak ------------------------------------------------------------------------


@pytest.fixture
def kc_user(rig: Any) -> Callable[[str], Recorder]:
    def make(username: str, password: str | None = None) -> Recorder:
        import pyotp

        totp = pyotp.TOTP(rig.totp_secret_b32)
        return Recorder(user=username, secret=password or username, code=totp.now)

    return make


@pytest.mark.rig
def test_keycloak_headless_cold_then_warm(
    rig: Any,
    kc_user: Callable[..., Recorder],
    chromium: BrowserSpec,
    capture: CaptureProxy,
    profile: Path,
) -> None:
    timings = {}
    for run in ("cold", "warm"):
        capture.captured.clear()
        prompter = kc_user("aws_user")
        began = time.monotonic()
        result = run_sign_in(chromium, capture, profile, rig.idp_login_url, prompter)
        timings[run] = time.monotonic() - began
        assert "aws_user" in decoded(result)
        if run == "cold":
            assert prompter.calls == ["username", "password"]
        else:
            assert prompter.calls == []  # the Keycloak session survived the browser restart
    cold, warm = timings["cold"], timings["warm"]
    print(f"keycloak sign-in incl. browser start: cold {cold:.2f} s, warm {warm:.2f} s")
    assert no_aws_connection(capture)


@pytest.mark.rig
def test_keycloak_totp(
    rig: Any,
    kc_user: Callable[..., Recorder],
    chromium: BrowserSpec,
    capture: CaptureProxy,
    profile: Path,
) -> None:
    prompter = kc_user("aws_mfa")
    result = run_sign_in(chromium, capture, profile, rig.idp_login_url, prompter)
    assert "aws_mfa" in decoded(result)
    assert prompter.calls[:2] == ["username", "password"]
    assert prompter.calls[2][0] == "mfa_code"
    print(f"keycloak MFA hint: {prompter.calls[2][1]!r}")


@pytest.mark.rig
def test_keycloak_wrong_password(
    rig: Any,
    kc_user: Callable[..., Recorder],
    chromium: BrowserSpec,
    capture: CaptureProxy,
    profile: Path,
) -> None:
    failures_before = rig.count_logins("aws_void", "LOGIN_ERROR")
    prompter = kc_user("aws_void", "not-the-password")
    began = time.monotonic()
    with pytest.raises(SignInError) as err:
        run_sign_in(chromium, capture, profile, rig.idp_login_url, prompter)
    elapsed = time.monotonic() - began
    print(f"keycloak wrong password reported after {elapsed:.2f} s (incl. browser start)")
    assert err.value.format_message() == "Invalid username or password."
    assert elapsed < 15
    assert prompter.calls.count("password") == 1
    assert rig.count_logins("aws_void", "LOGIN_ERROR") == failures_before + 1


def test_visible_browser_with_autofill(
    display: str, chromium: BrowserSpec, capture: CaptureProxy, idp: FakeIdP, profile: Path
) -> None:
    prompter = Recorder()
    with launch(chromium, capture, profile, headless=False) as driver:
        assert xdotool(display, "search", "--onlyvisible", "--class", "chromium")  # a real window
        result = fill_forms(
            driver, capture, idp.url("/mfa/"), prompter=prompter, autofill=True, timeout=30
        )
    assert 'ID="mfa-alice"' in decoded(result)
    assert [c if isinstance(c, str) else c[0] for c in prompter.calls] == [
        "username",
        "password",
        "mfa_code",
    ]


def field_position(driver: Any, element_id: str) -> tuple[int, int]:
    """Where a person would click on a page element, in window coordinates."""
    wait_until = time.monotonic() + 20
    while True:
        found = driver.execute_script(
            "const el = document.getElementById(arguments[0]);"
            "if (!el) return null;"
            "const r = el.getBoundingClientRect();"
            "return [r.left + r.width / 2, window.outerHeight - window.innerHeight"
            " + r.top + r.height / 2];",
            element_id,
        )
        if found:
            return int(found[0]), int(found[1])
        assert time.monotonic() < wait_until, f"no #{element_id} on the page"
        time.sleep(0.2)


@pytest.mark.rig
def test_keycloak_visible_browser_person_types(
    rig: Any, display: str, chromium: BrowserSpec, capture: CaptureProxy, profile: Path
) -> None:
    prompter = Recorder()
    outcome: dict[str, Any] = {}
    with launch(chromium, capture, profile, headless=False) as driver:

        def signing_in() -> None:
            try:
                outcome["result"] = fill_forms(
                    driver,
                    capture,
                    rig.idp_login_url,
                    prompter=prompter,
                    autofill=False,
                    timeout=60,
                )
            except Exception as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=signing_in, daemon=True)
        worker.start()
        # Like a person: wait for the sign-in window, then type into it with the keyboard.
        window = xdotool(
            display, "search", "--sync", "--onlyvisible", "--name", "Sign in to"
        ).split()[0]
        xdotool(display, "windowfocus", "--sync", window)
        for field_id in ("username", "password"):
            x, y = field_position(driver, field_id)
            xdotool(display, "mousemove", "--window", window, str(x), str(y), "click", "1")
            xdotool(display, "type", "--delay", "30", "aws_user")
        xdotool(display, "key", "Return")
        worker.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert "aws_user" in decoded(outcome["result"])
    assert prompter.calls == []


def test_a_whole_sign_in_prints_nothing(idp: FakeIdP, tmp_path: Path) -> None:
    """stdout may carry credential_process JSON: proxy, driver and browser must stay silent."""
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import logging, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from support.fake_idp import PASSWORD, USERNAME
        from awscli_saml_sso.browser.autofill import fill_forms
        from awscli_saml_sso.browser.chromium import open_browser
        from awscli_saml_sso.browser.discovery import resolve_browser
        from awscli_saml_sso.browser.proxy import CaptureProxy

        logging.basicConfig(level=logging.WARNING)  # like the CLI's default

        class Prompter:
            def username(self): return USERNAME
            def password(self): return PASSWORD
            def mfa_code(self, hint): return ""
            def info(self, message): pass
            def approve_origin(self, origin): return False

        with CaptureProxy(Path({str(tmp_path / "ca")!r})) as proxy, open_browser(
            resolve_browser(None, None), headless=True, profile_dir=Path({str(tmp_path / "p")!r}),
            proxy_port=proxy.port, ca_spki_sha256=proxy.ca_spki_sha256,
        ) as driver:
            value = fill_forms(driver, proxy, {idp.url("/single/")!r}, prompter=Prompter(),
                            autofill=True, timeout=30)
        sys.stdout.write(value)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr
    assert 'ID="single-alice"' in decoded(done.stdout)
    assert done.stderr == ""
    assert browser_processes(tmp_path / "p") == []
