"""Small sign-in pages in the shapes that broke autofill at real IdPs (shapes, not copies).

Each shape is a list of steps; a step is a page and the values its submit must carry
(whatever the fields are called). A right submit leads to the next step, after the last
to the SAML auto-post; a wrong one to a page with an alert naming what was sent. Pages
post forms to ``/<shape>/<step>``; script pages send the same as XHR (``X-Requested-With``)
and get JSON ``{"next": url}`` back. Username ``alice``, password ``wonderland``, code
``123456``.

Shapes:
- ``idtoken``   labelled fields with ids like ``idToken1``/``idToken2``, an ``input
  type=button``, sign-in by XHR; the script empties the password, then redirects.
- ``bare``      the same ids with no visible words at all (only type and id).
- ``token``     username/password labelled by table cells, then a page headed "Token Sign
  On" whose ``type=password`` field named "password" is labelled "Token code" by a
  neighbouring element.
- ``span``      the only "button" is a ``span`` with a click handler.
- ``dead``      a ``div role=button`` whose click does nothing, in a form without a submit
  button (Enter cannot submit it either): only the form's own submit works.
- ``hints``     username page, then a password page that shows field hints ("Please fill
  out this field.") as if the stylesheet that hides them had not loaded.
- ``continue``  after the password, a page whose only action is "Continue".
- ``kmsi``      after the password, "Stay signed in?" with Yes and No (not answered).
- ``methods``   after the password, a choice of methods: text, authenticator code, push;
  the push page shows a number to match and goes on by itself.
- ``shadow``    the form inside an open shadow root.
- ``frame``     the form inside a same-origin frame.
"""

from __future__ import annotations

import html
import http.server
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.fake_idp import ACS, OTP_CODE, PASSWORD, PUSH_NUMBER, USERNAME, _LoopbackServer

Page = Callable[[str], str]  # the step's action URL -> body HTML


def _doc(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    ).encode()


def _labelled_form(action: str, submit: str = "<button type='submit'>Sign in</button>") -> str:
    return (
        "<h1>Sign in</h1>"
        f"<form method='post' action='{action}'>"
        "<p><label for='u'>Username</label> <input id='u' name='u'></p>"
        "<p><label for='p'>Password</label> <input id='p' name='p' type='password'></p>"
        f"{submit}</form>"
    )


def _xhr_script(button: str, fields: str, password: str) -> str:
    """Send the fields by XHR on click; on success empty the password, then redirect."""
    return (
        "<script>"
        f"document.getElementById('{button}').addEventListener('click', async () => {{"
        "  const body = new URLSearchParams();"
        f"  for (const id of {fields}) body.append(id, document.getElementById(id).value);"
        "  const r = await fetch(ACTION, {method: 'POST', body,"
        "    headers: {'X-Requested-With': 'XMLHttpRequest'}});"
        "  const answer = await r.json();"
        f"  document.getElementById('{password}').value = '';"
        "  document.getElementById('status').textContent = 'Signing you in...';"
        "  setTimeout(() => { location.href = answer.next; }, 400);"
        "});</script>"
    )


def idtoken(action: str) -> str:
    return (
        f"<script>const ACTION = '{action}';</script>"
        "<h1>Sign in</h1><div id='status'></div>"
        "<div class='group'><label for='idToken1'>User Name</label>"
        "<input id='idToken1' name='callback_1' type='text'></div>"
        "<div class='group'><label for='idToken2'>Password</label>"
        "<input id='idToken2' name='callback_2' type='password'></div>"
        "<input type='button' id='loginButton_0' value='Log In'>"
        + _xhr_script("loginButton_0", "['idToken1', 'idToken2']", "idToken2")
    )


def bare(action: str) -> str:
    return (
        f"<h1>Welcome</h1><form method='post' action='{action}'>"
        "<input id='idToken1' name='callback_1' type='text'>"
        "<input id='idToken2' name='callback_2' type='password'>"
        "<input type='submit' value='Log In'></form>"
    )


def table_login(action: str) -> str:
    return (
        f"<h1>Token Sign On</h1><form method='post' action='{action}'><table>"
        "<tr><td>Username</td><td><input name='USER' type='text'></td></tr>"
        "<tr><td>Password</td><td><input name='PASSWORD' type='password'></td></tr>"
        "</table><input type='submit' value='Sign On'></form>"
    )


def token_code(action: str) -> str:
    return (
        f"<h1>Token Sign On</h1><form method='post' action='{action}'>"
        "<div class='row'><div class='caption'>Token code</div>"
        "<div class='cell'><input type='password' name='password' id='password'></div></div>"
        "<input type='submit' value='Sign On'></form>"
    )


def span_button(action: str) -> str:
    return _labelled_form(
        action,
        "<span id='go' class='btn' style='cursor: pointer; padding: 4px'>Sign in</span>"
        "<script>document.getElementById('go').onclick = () => document.forms[0].submit();"
        "</script>",
    )


def dead_button(action: str) -> str:
    return _labelled_form(
        action,
        "<div role='button' tabindex='0' style='padding: 4px'>Continue</div>",
    )


def username_only(action: str) -> str:
    return (
        f"<h1>Sign in</h1><form method='post' action='{action}'>"
        "<label for='email'>Email address</label> <input id='email' name='email'>"
        "<button type='submit'>Next</button></form>"
    )


def password_with_hints(action: str) -> str:
    hint = "Please fill out this field."
    return (
        f"<h1>Enter your password</h1><form method='post' action='{action}' novalidate>"
        "<div class='field'><label for='pw'>Password</label>"
        "<input id='pw' name='pw' type='password' required aria-describedby='pw-hint'>"
        f"<div id='pw-hint' class='invalid-feedback error'>{hint}</div>"
        f"<div class='alert alert-danger' aria-hidden='true'>{hint}</div>"
        f"<div class='error' style='position: absolute; left: -10000px'>{hint}</div></div>"
        "<button type='submit'>Sign in</button></form>"
    )


def continue_only(action: str) -> str:
    return (
        f"<h1>You are signed in</h1><p>Your organisation's notice: read it, then go on.</p>"
        f"<form method='post' action='{action}'><button type='submit'>Continue</button></form>"
        "<a href='/privacy'>Privacy</a>"
    )


def stay_signed_in(action: str) -> str:
    return (
        "<h1>Stay signed in?</h1><p>Do this to reduce the number of times you are asked.</p>"
        f"<form method='post' action='{action}'>"
        "<button type='submit' name='stay' value='no'>No</button>"
        "<button type='submit' name='stay' value='yes' autofocus>Yes</button></form>"
    )


def methods(action: str) -> str:
    return (
        "<h1>Verify your identity</h1><p>Choose how to confirm it is you.</p>"
        f"<form method='post' action='{action}'>"
        "<button type='submit' name='method' value='sms'>Text me a code</button>"
        "<button type='submit' name='method' value='app'>"
        "Use a verification code from my authenticator app</button>"
        "<button type='submit' name='method' value='push'>Approve a request on my phone</button>"
        "</form>"
    )


def code_page(action: str) -> str:
    return (
        f"<h1>Enter code</h1><form method='post' action='{action}'>"
        "<label for='c'>Code from your authenticator app</label> <input id='c' name='c'>"
        "<button type='submit'>Verify</button></form>"
    )


def push_page(action: str) -> str:
    return (
        "<h1>Approve sign-in request</h1><p>Open your authenticator app and enter the number"
        f" shown to sign in.</p><div style='font-size: 48px'>{PUSH_NUMBER}</div>"
        f"<form method='post' action='{action}'></form>"
        "<script>setTimeout(() => document.forms[0].submit(), 2500);</script>"
    )


def shadow(action: str) -> str:
    return (
        "<h1>Sign in</h1><login-box></login-box><script>"
        "customElements.define('login-box', class extends HTMLElement {"
        "  connectedCallback() {"
        "    const root = this.attachShadow({mode: 'open'});"
        f"    root.innerHTML = `{_labelled_form(action)}`;"
        "    const form = root.querySelector('form');"
        "    form.addEventListener('submit', (e) => {"
        "      e.preventDefault();"
        "      const f = document.createElement('form');"
        f"      f.method = 'post'; f.action = '{action}';"
        "      for (const i of form.querySelectorAll('input')) {"
        "        const h = document.createElement('input');"
        "        h.type = 'hidden'; h.name = i.name; h.value = i.value; f.appendChild(h);"
        "      }"
        "      document.body.appendChild(f); f.submit();"
        "    });"
        "  }"
        "});</script>"
    )


def framed(action: str) -> str:
    inner = _labelled_form(action).replace("<form ", "<form target='_top' ")
    return (
        "<h1>Welcome</h1><iframe style='width: 600px; height: 300px' "
        f'srcdoc="{html.escape(inner, quote=True)}"></iframe>'
    )


LOGIN = {USERNAME, PASSWORD}
SHAPES: dict[str, list[tuple[Page, set[str]]]] = {
    "idtoken": [(idtoken, LOGIN)],
    "bare": [(bare, LOGIN)],
    "token": [(table_login, LOGIN), (token_code, {OTP_CODE})],
    "span": [(span_button, LOGIN)],
    "dead": [(dead_button, LOGIN)],
    "hints": [(username_only, {USERNAME}), (password_with_hints, {PASSWORD})],
    "continue": [(table_login, LOGIN), (continue_only, set())],
    "kmsi": [(table_login, LOGIN), (stay_signed_in, {"yes"})],
    "methods": [(table_login, LOGIN), (methods, {"app"}), (code_page, {OTP_CODE})],
    "push": [(table_login, LOGIN), (methods, {"push"}), (push_page, set())],
    "shadow": [(shadow, LOGIN)],
    "frame": [(framed, LOGIN)],
}


def autopost(shape: str, saml_response: str | None = None) -> bytes:
    value = html.escape(saml_response or f"{shape}-{USERNAME}", quote=True)
    return _doc(
        "Redirecting",
        f"<form method='post' action='{ACS}'>"
        f"<input type='hidden' name='SAMLResponse' value='{value}'></form>"
        "<script>document.forms[0].submit()</script>",
    )


class ShapedIdP(_LoopbackServer):
    """The shaped pages on 127.0.0.1 (ephemeral port); ``posts`` records every submit."""

    def __init__(self, saml_response: str | None = None) -> None:
        self.saml_response = saml_response  # what the last step posts (default: a dummy)
        self.lock = threading.Lock()
        self.posts: list[tuple[str, dict[str, str]]] = []
        self._serve(type("Handler", (_Handler,), {"idp": self}))

    def url(self, shape: str) -> str:
        return f"http://127.0.0.1:{self.port}/{shape}/page/0"

    def posted(self, shape: str) -> list[dict[str, str]]:
        with self.lock:
            return [form for path, form in self.posts if path.startswith(f"/{shape}/")]


class _Handler(http.server.BaseHTTPRequestHandler):
    idp: ShapedIdP

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _page(self, shape: str, step: int) -> bytes:
        page, _ = SHAPES[shape][step]
        return _doc(f"{shape} step {step}", page(f"/{shape}/{step}"))

    def do_GET(self) -> None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 3 and parts[0] in SHAPES and parts[1] == "page":
            self._send(self._page(parts[0], int(parts[2])))
        elif len(parts) == 2 and parts[0] in SHAPES and parts[1] == "done":
            self._send(autopost(parts[0], self.idp.saml_response))
        else:
            self._send(_doc("Not found", "<p>Not found</p>"))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        shape, step_text = path.strip("/").split("/")
        step = int(step_text)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        with self.idp.lock:
            self.idp.posts.append((path, form))
        sent = {value for value in form.values() if value}
        if sent != SHAPES[shape][step][1]:
            body = _doc(
                "Sign-in failed",
                f"<div role='alert' class='alert-error'>Unexpected values: "
                f"{html.escape(', '.join(sorted(sent)))}</div>",
            )
            self._send(body)
            return
        following = step + 1
        done = following >= len(SHAPES[shape])
        if self.headers.get("X-Requested-With"):
            target = f"/{shape}/done" if done else f"/{shape}/page/{following}"
            self._send(json.dumps({"next": target}).encode(), "application/json")
        else:
            following_page = self._page(shape, following) if not done else b""
            self._send(autopost(shape, self.idp.saml_response) if done else following_page)
