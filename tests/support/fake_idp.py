"""A tiny local identity provider whose pages are shaped like several real ones.

Each flow ends with the usual SAML POST binding: an auto-posting form to
https://signin.aws.amazon.com/saml carrying a dummy SAMLResponse (base64 of a small XML
naming the flow and the user), which the capture proxy must catch.

Flows (username ``alice``, password ``wonderland``, one-time code ``123456``):

- ``/single/``  one page with username + password (Keycloak/ADFS-like); a wrong password
  shows the form again with an alert; a session cookie makes the next visit skip the form.
- ``/twostep/`` one document, username step then password step, non-standard ids and
  names (Entra-like); a wrong password shows an error and clears the field.
- ``/mfa/``     username + password, then a one-time-code page.
- ``/push/``    username + password, then a page that waits for a phone approval (with a
  number to match) and goes on by itself after ``push_delay`` seconds.
- ``/broken/``  an error page with nothing to fill (a misconfigured IdP link).
- ``/slow/``    a page that never finishes anything (for timeouts).
"""

from __future__ import annotations

import base64
import html
import http.server
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

USERNAME = "alice"
PASSWORD = "wonderland"
OTP_CODE = "123456"
PUSH_NUMBER = "42"
ACS = "https://signin.aws.amazon.com/saml"


def dummy_saml_response(flow: str, user: str) -> str:
    """The base64 SAMLResponse the fake IdP posts for ``flow`` and ``user``."""
    xml = f'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="{flow}-{user}"/>'
    return base64.b64encode(xml.encode()).decode()


@dataclass
class Posted:
    """One form post the IdP received (for tests: how often was the password sent?)."""

    path: str
    form: dict[str, str]


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    posts: list[Posted] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    push_started: dict[str, float] = field(default_factory=dict)


def _page(title: str, body: str, script: str = "") -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><main>{body}</main>"
        f"{'<script>' + script + '</script>' if script else ''}</body></html>"
    ).encode()


def _autopost(flow: str, user: str) -> bytes:
    value = dummy_saml_response(flow, user)
    return (
        "<!doctype html><html><head><title>Redirecting</title></head>"
        "<body onload='document.forms[0].submit()'>"
        f"<form method='post' action='{ACS}'>"
        f"<input type='hidden' name='SAMLResponse' value='{value}'>"
        "<input type='hidden' name='RelayState' value=''>"
        "<noscript><button type='submit'>Continue</button></noscript></form></body></html>"
    ).encode()


def _single_form(error: str = "", username: str = "") -> bytes:
    alert = (
        f"<div class='alert alert-danger' role='alert'><span>{html.escape(error)}</span></div>"
        if error
        else ""
    )
    return _page(
        "Sign in to Example",
        "<h1>Sign in to your account</h1>"
        "<div class='alert alert-info'>Use your corporate account.</div>"
        f"{alert}"
        "<form method='post' action='/single/login'>"
        "<label for='username'>Username or email</label>"
        f"<input id='username' name='username' type='text' value='{html.escape(username)}'>"
        "<label for='password'>Password</label>"
        "<input id='password' name='password' type='password'>"
        "<a href='/forgot'>Forgot password?</a>"
        "<input type='submit' id='kc-login' name='login' value='Sign In'>"
        "</form>",
    )


_TWOSTEP = _page(
    "Sign in to your account",
    "<div id='lightbox'>"
    "<div id='step1'><div role='heading'>Sign in</div>"
    "<input type='email' name='loginfmt' id='i0116' placeholder='Email, phone, or Skype'>"
    "<input type='button' id='idBack' value='Back'>"
    "<input type='submit' id='idSIButton9' value='Next'></div>"
    "<div id='step2' style='display:none'><div role='heading'>Enter password</div>"
    "<div id='passwordError' class='error ext-error' role='alert' style='display:none'></div>"
    "<input type='password' name='passwd' id='i0118' placeholder='Password'>"
    "<input type='submit' id='idSIButton9b' value='Sign in'></div>"
    "</div>",
    """
const step1 = document.getElementById('step1'), step2 = document.getElementById('step2');
document.getElementById('idSIButton9').addEventListener('click', () => {
  if (!document.getElementById('i0116').value) return;
  setTimeout(() => { step1.style.display = 'none'; step2.style.display = 'block'; }, 300);
});
document.getElementById('i0116').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') document.getElementById('idSIButton9').click();
});
async function signIn() {
  const body = new URLSearchParams({
    login: document.getElementById('i0116').value,
    passwd: document.getElementById('i0118').value});
  const r = await fetch('/twostep/check', {method: 'POST', body});
  if (r.ok) { location.href = '/twostep/done'; return; }
  const err = document.getElementById('passwordError');
  err.textContent = 'Your account or password is incorrect.';
  err.style.display = 'block';
  document.getElementById('i0118').value = '';
}
document.getElementById('idSIButton9b').addEventListener('click', signIn);
""",
)


def _otp_form(error: str = "") -> bytes:
    alert = f"<p class='form-error'>{html.escape(error)}</p>" if error else ""
    return _page(
        "Two-step verification",
        "<h1>Two-step verification</h1>"
        f"{alert}"
        "<form method='post' action='/mfa/otp'>"
        "<label for='c1'>Enter the code from your authenticator app</label>"
        "<input id='c1' name='otc' type='text' inputmode='numeric' maxlength='6'"
        " autocomplete='one-time-code'>"
        "<button>Verify</button></form>",
    )


_PUSH = _page(
    "Approve sign-in",
    "<h1>Approve sign-in request</h1>"
    f"<p>Open your Authenticator app and enter the number {PUSH_NUMBER} to sign in.</p>"
    "<div id='status' aria-live='polite'>Waiting for approval...</div>"
    "<form method='post' action='/push/cancel'><button type='button'>I can't use my app"
    "</button></form>",
    """
async function poll() {
  const r = await fetch('/push/status');
  if ((await r.text()) === 'approved') { location.href = '/push/done'; return; }
  setTimeout(poll, 250);
}
poll();
""",
)


class _LoopbackServer:
    """An HTTP server on 127.0.0.1 (ephemeral port) served from a daemon thread while in use."""

    def _serve(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class FakeIdP(_LoopbackServer):
    """The fake IdP on 127.0.0.1 (ephemeral port), served from a daemon thread."""

    def __init__(self, *, push_delay: float = 2.5) -> None:
        self.push_delay = push_delay
        self.state = _State()
        self._serve(type("Handler", (_Handler,), {"idp": self}))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def posts(self, path: str) -> list[Posted]:
        with self.state.lock:
            return [p for p in self.state.posts if p.path == path]


class _Handler(http.server.BaseHTTPRequestHandler):
    idp: FakeIdP

    def log_message(self, format: str, *args: Any) -> None:  # silence the access log
        pass

    # -- helpers ---------------------------------------------------------------------

    def _send(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _session(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        token = cookie.get("fakeidp_session")
        with self.idp.state.lock:
            return token.value if token and token.value in self.idp.state.sessions else None

    def _new_session(self) -> dict[str, str]:
        token = secrets.token_hex(8)
        with self.idp.state.lock:
            self.idp.state.sessions.add(token)
        # A session cookie (no expiry), like Keycloak's without "remember me".
        return {"Set-Cookie": f"fakeidp_session={token}; Path=/; HttpOnly; SameSite=Lax"}

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        with self.idp.state.lock:
            self.idp.state.posts.append(Posted(urlsplit(self.path).path, form))
        return form

    # -- routes ----------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/single/":
            if self._session():
                self._send(_autopost("single", USERNAME))
            else:
                self._send(_single_form())
        elif path == "/twostep/":
            self._send(_TWOSTEP)
        elif path == "/twostep/done":
            self._send(_autopost("twostep", USERNAME))
        elif path == "/mfa/":
            self._send(_single_form().replace(b"/single/login", b"/mfa/login"))
        elif path == "/push/":
            self._send(_single_form().replace(b"/single/login", b"/push/login"))
        elif path == "/push/wait":
            self._send(_PUSH)
        elif path == "/push/status":
            with self.idp.state.lock:
                started = self.idp.state.push_started.setdefault("push", time.monotonic())
            done = time.monotonic() - started >= self.idp.push_delay
            self._send(b"approved" if done else b"pending")
        elif path == "/push/done":
            self._send(_autopost("push", USERNAME))
        elif path == "/broken/":
            self._send(
                _page(
                    "We are sorry...",
                    "<h1>We are sorry...</h1><p id='kc-error-message' class='instruction'>"
                    "Invalid Request</p>",
                ),
                status=400,
            )
        elif path == "/slow/":
            self._send(_page("Please wait", "<p>Loading your organisation's sign-in page</p>"))
        else:
            self._send(_page("Not found", "<p>Not found</p>"), status=404)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        good = form.get("username") == USERNAME and form.get("password") == PASSWORD
        if path == "/single/login":
            if good:
                self._send(_autopost("single", USERNAME), headers=self._new_session())
            else:
                error = "Invalid username or password."
                self._send(_single_form(error, form.get("username", "")))
        elif path == "/twostep/check":
            ok = form.get("login") == USERNAME and form.get("passwd") == PASSWORD
            self._send(b"ok" if ok else b"no", status=200 if ok else 401)
        elif path == "/mfa/login":
            if good:
                self._send(_otp_form())
            else:
                self._send(_single_form("Invalid username or password."))
        elif path == "/mfa/otp":
            if form.get("otc") == OTP_CODE:
                self._send(_autopost("mfa", USERNAME))
            else:
                self._send(_otp_form("That code didn't work. Check the code and try again."))
        elif path == "/push/login":
            if good:
                self._redirect("/push/wait")
            else:
                self._send(_single_form("Invalid username or password."))
        else:
            self._send(_page("Not found", "<p>Not found</p>"), status=404)


class SelfSignedHTTPS(_LoopbackServer):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate nobody trusts."""

    def __init__(self, tmpdir: Any) -> None:
        import datetime
        import ssl

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        certfile = tmpdir / "selfsigned.pem"
        certfile.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.certfile = certfile

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = _page("Secret page", "<p>self-signed content</p>")
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
