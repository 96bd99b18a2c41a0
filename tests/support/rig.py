"""Session fixture for the local identity rig: a live Keycloak and moto server.

The rig logic lives in ``keycloak/rig.py`` (on sys.path through tests/conftest.py); this
plugin only leases the rig for the test session and adds test helpers (a plain-HTTP SAML
sign-in and the Keycloak admin API for counting sign-ins).
"""

from __future__ import annotations

import base64
import contextlib
import html
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
import rig as keycloak_rig

ACS_URL = "https://signin.aws.amazon.com/saml"
# What the terminal summary reports about the rig this session used.
_SUMMARY: list[str] = []


class SignInFailed(AssertionError):
    """Keycloak answered with a page other than the SAML auto-post form."""


@dataclass(frozen=True)
class SignIn:
    """Outcome of a plain-HTTP sign-in: the SAMLResponse as the browser would post it."""

    saml_response: str  # base64, exactly as in the auto-post form
    acs_url: str  # where the form posts to
    asked_for_otp: bool

    @property
    def xml(self) -> bytes:
        """The decoded SAML Response document."""
        return base64.b64decode(self.saml_response)


@dataclass(frozen=True)
class Rig(keycloak_rig.RigInfo):
    """The live rig (see keycloak_rig.RigInfo for its URLs and ARNs) plus helpers."""

    started: tuple[str, ...] = ()  # services this session started (and stops at its end)
    keycloak_version: str = ""  # as reported by the live server

    def admin_token(self) -> str:
        """A master-realm admin access token (test-only bootstrap admin)."""
        resp = requests.post(
            f"{self.keycloak_url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.admin_username,
                "password": self.admin_password,
            },
            timeout=10,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def admin_get(self, path: str, **params: str | int) -> Any:
        """GET ``/admin/realms/<realm>/<path>`` as the admin; the decoded JSON."""
        resp = requests.get(
            f"{self.keycloak_url}/admin/realms/{self.realm}/{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.admin_token()}"},
            timeout=10,
        )
        resp.raise_for_status()
        return resp.json()

    def log_out(self, username: str) -> None:
        """End every Keycloak session of a user (as an admin would, or an idle timeout)."""
        resp = requests.post(
            f"{self.keycloak_url}/admin/realms/{self.realm}/users/{self.user_id(username)}/logout",
            headers={"Authorization": f"Bearer {self.admin_token()}"},
            timeout=10,
        )
        resp.raise_for_status()

    def user_id(self, username: str) -> str:
        """Keycloak's id of a user of the realm."""
        users = self.admin_get("users", username=username, exact="true")
        if len(users) != 1:
            raise LookupError(f"realm {self.realm} has no user {username!r}")
        return str(users[0]["id"])

    def count_logins(self, username: str, event_type: str = "LOGIN") -> int:
        """How many ``event_type`` events (LOGIN or LOGIN_ERROR) Keycloak recorded for a user.

        Events persist for the life of the Keycloak process: compare before/after.
        """
        events = self.admin_get("events", type=event_type, user=self.user_id(username), max=100000)
        return len(events)

    def sign_in(self, username: str, password: str | None = None, otp: str | None = None) -> SignIn:
        """Sign in at the IdP-initiated URL with a plain HTTP client, following the forms.

        ``password`` defaults to the username (the rig's test users); an OTP
        form is answered with ``otp`` or else a code from the rig's fixed TOTP
        secret. Raises SignInFailed when no SAMLResponse comes back.
        """
        import pyotp

        session = requests.Session()
        page = _send(session, "GET", self.idp_login_url)
        page = _send(
            session,
            "POST",
            _form_action(page),
            {"username": username, "password": password or username, "credentialId": ""},
        )
        asked_for_otp = 'name="otp"' in page.text
        if asked_for_otp:
            code = otp or pyotp.TOTP(self.totp_secret_b32).now()
            page = _send(session, "POST", _form_action(page), {"otp": code})
        found = re.search(r'name="SAMLResponse"\s+value="([^"]+)"', page.text)
        if not found:
            raise SignInFailed(f"no SAMLResponse for {username}: {_page_summary(page.text)}")
        return SignIn(html.unescape(found.group(1)), _form_action(page), asked_for_otp)

    def saml_response(
        self, username: str, password: str | None = None, otp: str | None = None
    ) -> str:
        """The base64 SAMLResponse for a user (see ``sign_in``)."""
        return self.sign_in(username, password, otp).saml_response


def _send(
    session: requests.Session, method: str, url: str, data: dict[str, str] | None = None
) -> requests.Response:
    # Keycloak marks its cookies Secure (they are SameSite=None) even over
    # http. Browsers keep them for http://localhost, a secure context;
    # http.cookiejar drops them, and requests re-checks on every redirect. So
    # redirects are followed here and the flag is cleared for this loopback
    # host only.
    for _ in range(10):
        resp = session.request(method, url, data=data, allow_redirects=False, timeout=30)
        for cookie in session.cookies:
            cookie.secure = False
        if not resp.is_redirect:
            return resp
        url, method, data = urljoin(url, resp.headers["Location"]), "GET", None
    raise SignInFailed(f"too many redirects from {url}")


def _form_action(page: requests.Response) -> str:
    found = re.search(r'<form\b[^>]*\baction="([^"]+)"', page.text)
    if not found:
        raise SignInFailed(f"no form on {page.url}: {_page_summary(page.text)}")
    return urljoin(page.url, html.unescape(found.group(1)))


def _page_summary(text: str) -> str:
    page_id = re.search(r'data-page-id="([^"]+)"', text)
    errors = re.findall(r"(?:input-error|kc-feedback-text|alert__title)[^>]*>\s*([^<]+?)\s*<", text)
    return f"page {page_id.group(1) if page_id else '?'}, messages {errors}"


@pytest.fixture(scope="session")
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    """The live rig, started (or reused if healthy) for the session.

    Test sessions on one machine take turns with the rig (a second one waits
    for the first), so the sign-ins Keycloak records are this session's own.
    At the end the rig is stopped unless a person pinned it with ``rig.py up``.
    """
    capture = request.config.pluginmanager.get_plugin("capturemanager")

    said: list[str] = []

    def log(message: str) -> None:
        # Shown live: a cold start takes most of a minute.
        lead = "" if said else "\n"  # off the line of progress dots
        said.append(message)
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(f"{lead}rig: {message}", file=sys.stderr)

    try:
        result = keycloak_rig.up(lease=os.getpid(), log=log)
    except keycloak_rig.RigError as err:
        pytest.fail(f"the rig could not start: {err}", pytrace=False)
    try:
        rig = Rig(**asdict(result.info), started=result.started)
        server = requests.get(
            f"{rig.keycloak_url}/admin/serverinfo",
            headers={"Authorization": f"Bearer {rig.admin_token()}"},
            timeout=10,
        ).json()
        rig = Rig(**{**asdict(rig), "keycloak_version": server["systemInfo"]["version"]})
        how = f"started {', '.join(result.started)}" if result.started else "reused"
        _SUMMARY.append(
            f"live Keycloak {rig.keycloak_version} at {rig.keycloak_url} (realm {rig.realm}), "
            f"AWS emulator at {rig.endpoint_url}; {how}, ready in {result.seconds:.1f} s"
        )
        yield rig
    finally:
        stopped = keycloak_rig.release(os.getpid())
        _SUMMARY.append(f"stopped at session end: {', '.join(stopped) or 'nothing'}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which rig the session ran against, so a CI log shows it was live."""
    if _SUMMARY:
        terminalreporter.section("identity rig")
        for line in _SUMMARY:
            terminalreporter.write_line(line)
