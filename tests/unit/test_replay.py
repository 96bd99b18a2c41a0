"""Session replay over real loopback HTTP: what is kept, what is sent where, when it gives up.

The fake IdP (tests/support/fake_idp.py) keeps a session cookie and answers its next visit
with the SAML POST binding page; a second loopback server records what reaches it. The
Keycloak cases (a live session, a logged-out one, a realm that asks for OTP again) are in
tests/e2e/test_replay_e2e.py.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.fake_idp import FakeIdP, dummy_saml_response

from awscli_saml_sso.idp import replay, sessions
from awscli_saml_sso.idp.sessions import Session, SessionCookie
from awscli_saml_sso.idp.store import Settings


def signed_in(idp: FakeIdP) -> Session:
    """The session a browser would hold after signing in at the fake IdP's /single/ page."""
    answer = requests.post(
        idp.url("/single/login"), data={"username": "alice", "password": "wonderland"}, timeout=5
    )
    browser_cookies = [
        {"name": c.name, "value": c.value, "domain": c.domain, "path": c.path, "secure": c.secure}
        for c in answer.cookies
    ] + [{"name": "tracker", "value": "x", "domain": ".example.com", "path": "/"}]
    session = sessions.idp_session(idp.url("/single/"), browser_cookies, "alice")
    assert session is not None
    return session


def test_a_live_session_gives_the_assertion_without_a_browser() -> None:
    with FakeIdP() as idp:
        session = signed_in(idp)
        assert [c.name for c in session.cookies] == ["fakeidp_session"]  # not example.com's
        assert replay.replay(idp.url("/single/"), session) == dummy_saml_response("single", "alice")
        assert idp.posts("/single/login")[-1:] and len(idp.posts("/single/login")) == 1


def test_a_login_page_is_not_replayable() -> None:
    with FakeIdP() as idp:
        stale = Session("127.0.0.1", "alice", (SessionCookie("fakeidp_session", "gone"),))
        with pytest.raises(replay.NotReplayable):
            replay.replay(idp.url("/single/"), stale)
        assert idp.posts("/single/login") == []  # nothing typed, nothing posted


@pytest.mark.parametrize(
    ("page", "why"),
    [
        ("<form action='/otp' method='post'><input name='otp'><button>Go</button></form>", "mfa"),
        ("<div id='app'></div><script>start()</script>", "script only"),
        (
            "<form method='post' action='/consent'><input type='hidden' name='t' value='1'>"
            "<button name='accept'>Yes</button><button name='deny'>No</button></form>",
            "a decision",
        ),
        ("<form></form><form><input type='hidden' name='a' value='b'></form>", "two forms"),
    ],
)
def test_pages_for_a_person_are_not_relays(page: str, why: str) -> None:
    with pytest.raises(replay.NotReplayable):
        replay.relay_form(page, "https://idp.example.com/x")


def test_relay_form_reads_hidden_inputs_and_resolves_the_action() -> None:
    page = (
        "<body onload='document.forms[0].submit()'><form method='POST' action='../saml'>"
        "<input type='hidden' name='SAMLResponse' value='a&amp;b'>"
        "<noscript><input type='submit' value='Continue'></noscript></form></body>"
    )
    form = replay.relay_form(page, "https://idp.example.com/realms/x/")
    assert form.action == "https://idp.example.com/realms/saml" and form.method == "post"
    assert form.hidden == [("SAMLResponse", "a&b")]


def test_secure_cookies_go_over_https_and_to_loopback_only() -> None:
    cookie = SessionCookie("KEYCLOAK_IDENTITY", "v", "/realms/aws/", secure=True)
    now = time.time()
    assert cookie.sendable("/realms/aws/protocol", https=False, loopback=True, now=now)
    assert cookie.sendable("/realms/aws/protocol", https=True, loopback=False, now=now)
    assert not cookie.sendable("/realms/aws/protocol", https=False, loopback=False, now=now)
    assert not cookie.sendable("/realms/awsx", https=True, loopback=False, now=now)
    expired = SessionCookie("a", "v", "/", expires=now - 1)
    assert not expired.sendable("/", https=True, loopback=False, now=now)


class Recorder:
    """A loopback server that redirects its first path to `target` and records Cookie headers."""

    def __init__(self) -> None:
        self.cookies: list[tuple[str, str | None]] = []
        self.target = ""
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.cookies.append((self.path, self.headers.get("Cookie")))
                if self.path == "/start" and recorder.target:
                    self.send_response(302)
                    self.send_header("Location", recorder.target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"<form method='post' action='/login'><input name='username'></form>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    first, second = Recorder(), Recorder()
    yield first, second
    first.close()
    second.close()


def test_cookies_are_never_sent_to_another_host(recorders: tuple[Recorder, Recorder]) -> None:
    idp, other = recorders
    # Same machine, other host name: a redirect there must not carry the IdP's cookies.
    idp.target = f"http://localhost:{other.port}/elsewhere"
    session = Session("127.0.0.1", None, (SessionCookie("sid", "secret", "/", secure=True),))
    with pytest.raises(replay.NotReplayable):
        replay.replay(f"http://127.0.0.1:{idp.port}/start", session)
    assert idp.cookies == [("/start", "sid=secret")]
    assert other.cookies == [("/elsewhere", None)]


def test_plain_http_to_a_remote_host_is_refused() -> None:
    session = Session("idp.example.com", None, (SessionCookie("sid", "secret"),))
    with pytest.raises(replay.NotReplayable, match="refusing"):
        replay.replay("http://idp.example.com/start", session)


def test_sessions_round_trip_through_a_private_file(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "config")
    session = Session("idp.example.com", "alice", (SessionCookie("sid", "s", "/p", True, None),))
    # No keyring in this process (no D-Bus session): the file is the fallback.
    where = sessions.keep(settings, "corp", session)
    assert where is not None
    assert sessions.recall(settings, "corp") == session
    if where != "keyring":
        path = Path(where)
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
    assert "'s'" not in repr(session) and "value" not in repr(session.cookies[0])
    assert settings.forget_session("corp")
    assert sessions.recall(settings, "corp") is None


def test_a_session_fits_only_its_user_at_its_host() -> None:
    session = Session("idp.example.com", "alice", ())
    assert session.fits("https://IDP.example.com/saml/start", "alice")
    assert not session.fits("https://idp.example.com/saml/start", "bob")
    assert not session.fits("https://other.example.com/saml/start", "alice")
