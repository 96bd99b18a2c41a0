"""Session replay: a sign-in without a browser while the IdP's session is still alive.

With the cookies a browser sign-in left (idp/sessions.py), fetch the IdP-initiated URL over
plain HTTP, follow redirects and self-submitting forms (hidden inputs only, no script is
run), and stop at the form that posts a SAMLResponse to AWS: its value is the assertion,
and nothing is posted anywhere. Anything else (a login page, a page that only works with
scripts, a step-up MFA form, an error, a TLS or proxy failure) answers None at once and the
caller signs in with the browser as usual.

Standard library only (urllib.request, html.parser): no selenium, no mitmproxy. TLS is
verified with the system's trust store; the proxy for each URL comes from the caller's
`route` (the one routing rule, network.Router).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING

from awscli_saml_sso.idp.sessions import Session, SessionCookie
from awscli_saml_sso.model import is_capture_request, is_loopback

if TYPE_CHECKING:
    import urllib.request
    from email.message import Message

log = logging.getLogger(__name__)

MAX_HOPS = 6
MAX_PAGE_BYTES = 8 * 1024 * 1024  # an assertion granting 1,000 roles is well under 1 MiB
HOP_TIMEOUT = 10.0
_USER_AGENT = "awscli_saml_sso (session replay)"
_BUTTONS = {"submit", "button", "image", "reset"}


class NotReplayable(Exception):
    """The page needs more than a replay can give: the caller opens the browser."""


# Reading a page as a browser without scripts would ------------------------------------------
@dataclass
class Form:
    action: str
    method: str
    hidden: list[tuple[str, str]] = field(default_factory=list)
    visible_fields: int = 0  # anything a person would fill or choose
    named_buttons: int = 0  # more than one named choice means a decision, not a relay


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.stray_fields = 0  # fields outside any form (a script would read them)
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(values.get("action", ""), (values.get("method") or "get").lower())
            self.forms.append(self._current)
        elif tag in ("input", "select", "textarea", "button"):
            kind = values.get("type", "submit" if tag == "button" else "text").lower()
            form = self._current
            if form is None:
                self.stray_fields += kind != "hidden"
            elif tag == "input" and kind == "hidden":
                if values.get("name"):
                    form.hidden.append((values["name"], values.get("value", "")))
            elif tag in ("input", "button") and kind in _BUTTONS:
                form.named_buttons += bool(values.get("name"))
            else:
                form.visible_fields += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def relay_form(page: str, base_url: str) -> Form:
    """The page's one self-submitting form (absolute action), or NotReplayable.

    A relay page (a SAML POST binding, say) holds exactly one form of hidden inputs and at
    most one named button; a login, MFA, consent or account-choice page does not.
    """
    parser = _Forms()
    parser.feed(page)
    parser.close()
    if len(parser.forms) != 1 or parser.stray_fields:
        raise NotReplayable(f"{len(parser.forms)} forms, {parser.stray_fields} stray fields")
    form = parser.forms[0]
    if form.visible_fields or form.named_buttons > 1 or not form.hidden:
        raise NotReplayable("a form for a person, not a relay")
    return replace(form, action=urllib.parse.urljoin(base_url, form.action or base_url))


# Where requests go ---------------------------------------------------------------------------
#: URL -> the proxy URL to reach it through (Basic credentials allowed), None for direct.
Route = Callable[[str], str | None]


def _direct(url: str) -> str | None:
    return None


def _opener(url: str, route: Route) -> urllib.request.OpenerDirector:
    # urllib.request pulls in http.client, email and ssl (tens of ms): only a replay pays.
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None  # the walk follows redirects itself, to decide what cookies go where

    proxy = route(url)
    scheme = urllib.parse.urlsplit(url).scheme
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({scheme: proxy} if proxy else {}), NoRedirects()
    )


# The walk -------------------------------------------------------------------------------------
@dataclass
class _Jar:
    """The session's cookies, sent to the IdP's own host and nowhere else."""

    session: Session
    cookies: dict[tuple[str, str], SessionCookie] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cookies = {(c.name, c.path): c for c in self.session.cookies}

    def header(self, url: str) -> str | None:
        parts = urllib.parse.urlsplit(url)
        if (parts.hostname or "").lower() != self.session.host:
            return None
        https = parts.scheme == "https"
        loopback = is_loopback(parts.hostname)
        now = time.time()
        path = parts.path or "/"
        chosen = [
            c
            for c in sorted(self.cookies.values(), key=lambda c: -len(c.path))
            if c.sendable(path, https=https, loopback=loopback, now=now)
        ]
        return "; ".join(f"{c.name}={c.value}" for c in chosen) or None

    def absorb(self, url: str, headers: Message) -> None:
        """Take the Set-Cookie headers of an answer from the IdP's host (others are ignored)."""
        if (urllib.parse.urlsplit(url).hostname or "").lower() != self.session.host:
            return
        for line in headers.get_all("Set-Cookie") or []:
            parsed: SimpleCookie = SimpleCookie()
            try:
                parsed.load(line)
            except CookieError:
                continue
            for name, morsel in parsed.items():
                path = morsel["path"] or "/"
                expires: float | None = None
                if morsel["max-age"]:
                    try:
                        expires = time.time() + int(morsel["max-age"])
                    except ValueError:
                        expires = None
                cookie = SessionCookie(name, morsel.value, path, bool(morsel["secure"]), expires)
                if (expires is not None and expires <= time.time()) or not morsel.value:
                    self.cookies.pop((name, path), None)
                else:
                    self.cookies[(name, path)] = cookie


def _fetch(
    jar: _Jar, url: str, data: bytes | None, timeout: float, route: Route
) -> tuple[int, str, str]:
    """One request: (status, Location or page text, final URL). Raises NotReplayable."""
    import urllib.error  # see _opener: only a replay pays for urllib.request
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise NotReplayable(f"refusing to send anything over {parts.scheme} to {parts.hostname}")
    # Only https, or http to this machine, gets this far (checked just above).
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    request.add_header("User-Agent", _USER_AGENT)
    request.add_header("Accept", "text/html,application/xhtml+xml")
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    cookie = jar.header(url)
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        answer = _opener(url, route).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:  # a 3xx arrives here (no redirect handler)
        jar.absorb(url, exc.headers)
        if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
            return exc.code, str(exc.headers["Location"]), url
        raise NotReplayable(f"HTTP {exc.code} from {parts.hostname}") from exc
    except (OSError, ValueError) as exc:  # URLError, TLS, timeouts, a bad proxy URL
        raise NotReplayable(f"{parts.hostname} unreachable: {exc}") from exc
    with answer:
        jar.absorb(url, answer.headers)
        body = answer.read(MAX_PAGE_BYTES + 1)
        if len(body) > MAX_PAGE_BYTES:
            raise NotReplayable("page over the size limit")
        charset = answer.headers.get_content_charset() or "utf-8"
        return answer.status, body.decode(charset, errors="replace"), answer.geturl()


def replay(
    url: str, session: Session, *, timeout: float = HOP_TIMEOUT, route: Route = _direct
) -> str:
    """The SAMLResponse (base64, as the IdP would post it) that the IdP gives `session` for
    the IdP-initiated `url`. Raises NotReplayable for anything else.

    Cookies the IdP sets along the way are used for the rest of the walk, not kept: the kept
    session is the browser's, and the IdP extends it on its side at each use.
    """
    jar = _Jar(session)
    data: bytes | None = None
    for _ in range(MAX_HOPS):
        status, text, where = _fetch(jar, url, data, timeout, route)
        if status in (301, 302, 303, 307, 308):
            url, data = urllib.parse.urljoin(where, text), None
            continue
        form = relay_form(text, where)
        target = urllib.parse.urlsplit(form.action)
        if form.method == "post" and is_capture_request(target.hostname or "", "POST", target.path):
            fields = dict(form.hidden)
            if target.scheme != "https" or not fields.get("SAMLResponse"):
                raise NotReplayable("the form to AWS carries no SAMLResponse")
            return fields["SAMLResponse"]
        encoded = urllib.parse.urlencode(form.hidden)
        if form.method == "post":
            url, data = form.action, encoded.encode("ascii")
        else:
            url, data = f"{form.action.split('?', 1)[0]}?{encoded}", None
    raise NotReplayable(f"no assertion after {MAX_HOPS} hops")
