"""A security key or passkey as second factor: real Keycloak (realm aws-webauthn), a visible
Chromium under Xvfb and Chromium's virtual authenticator in place of the key.

The person's part (pressing the page's security-key button) is done with the mouse through
xdotool; the tool fills username and password and captures the SAMLResponse as usual.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.browsers import launch, xdotool
from support.rig import Rig

from awscli_saml_sso.browser.autofill import fill_forms
from awscli_saml_sso.browser.discovery import BrowserSpec
from awscli_saml_sso.browser.proxy import CaptureProxy

pytestmark = [pytest.mark.rig, pytest.mark.browser]

IDP = "keycloak-webauthn"
USER = "aws_user"


@dataclasses.dataclass
class Person:
    """A Prompter for the rig's aws_user that records what it was asked."""

    calls: list[Any] = dataclasses.field(default_factory=list)

    def username(self) -> str:
        self.calls.append("username")
        return USER

    def password(self) -> str:
        self.calls.append("password")
        return USER

    def mfa_code(self, hint: str) -> str:
        self.calls.append(("mfa_code", hint))
        return ""

    def info(self, message: str) -> None:
        self.calls.append(("info", message))

    def approve_origin(self, origin: str) -> bool:
        return False  # Keycloak never leaves its own origin

    def asked(self) -> list[Any]:
        return [call for call in self.calls if not (isinstance(call, tuple) and call[0] == "info")]

    def said(self) -> list[str]:
        return [call[1] for call in self.calls if isinstance(call, tuple) and call[0] == "info"]


@pytest.fixture
def realm(rig: Rig) -> Iterator[Rig]:
    """The WebAuthn realm with aws_user asked to register a key on the next sign-in; the
    user's WebAuthn credentials and sessions are removed before and after the test."""
    if IDP not in rig.idp_urls:
        pytest.skip(f"the rig runs without {IDP} (see `rig.py status`)")
    name = rig.idp_urls[IDP].split("/realms/")[1].split("/")[0]
    here = dataclasses.replace(rig, realm=name)
    forget_keys(here)
    admin(
        here, "PUT", f"users/{here.user_id(USER)}", json={"requiredActions": ["webauthn-register"]}
    )
    yield here
    forget_keys(here)


def admin(rig: Rig, method: str, path: str, **kwargs: Any) -> None:
    resp = requests.request(
        method,
        f"{rig.keycloak_url}/admin/realms/{rig.realm}/{path}",
        headers={"Authorization": f"Bearer {rig.admin_token()}"},
        timeout=10,
        **kwargs,
    )
    resp.raise_for_status()


def webauthn_keys(rig: Rig) -> list[dict[str, Any]]:
    credentials = rig.admin_get(f"users/{rig.user_id(USER)}/credentials")
    return [c for c in credentials if c["type"] == "webauthn"]


def forget_keys(rig: Rig) -> None:
    user = rig.user_id(USER)
    for key in webauthn_keys(rig):
        admin(rig, "DELETE", f"users/{user}/credentials/{key['id']}")
    admin(rig, "PUT", f"users/{user}", json={"requiredActions": []})
    rig.log_out(USER)


def button_position(driver: Any, element_id: str, seconds: float = 30) -> tuple[int, int]:
    """Where a person would click on a visible page button, in window coordinates."""
    wait_until = time.monotonic() + seconds
    while True:
        found = driver.execute_script(
            "const el = document.getElementById(arguments[0]);"
            "if (!el || !el.getClientRects().length) return null;"
            "const r = el.getBoundingClientRect();"
            "return [r.left + r.width / 2, window.outerHeight - window.innerHeight"
            " + r.top + r.height / 2];",
            element_id,
        )
        if found:
            return int(found[0]), int(found[1])
        assert time.monotonic() < wait_until, f"no #{element_id} on the page"
        time.sleep(0.2)


def sign_in_pressing(
    driver: Any, display: str, capture: CaptureProxy, url: str, button_id: str
) -> tuple[str, Person]:
    """Sign in with autofill while the person presses the page's security-key button."""
    capture.reset()
    person = Person()
    outcome: dict[str, Any] = {}

    def signing_in() -> None:
        try:
            outcome["result"] = fill_forms(
                driver, capture, url, prompter=person, autofill=True, timeout=60
            )
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=signing_in, daemon=True)
    worker.start()
    # The autofill settles on the key page and tells the person (never presses for them).
    wait_until = time.monotonic() + 30
    while not any("Passkey" in said for said in person.said()):
        assert worker.is_alive() and time.monotonic() < wait_until, outcome
        time.sleep(0.2)
    assert not capture.captured.is_set()
    x, y = button_position(driver, button_id)
    window = xdotool(display, "search", "--sync", "--onlyvisible", "--class", "chromium")
    window = window.split()[0]
    xdotool(display, "windowfocus", "--sync", window)
    xdotool(display, "mousemove", "--window", window, str(x), str(y), "click", "1")
    worker.join(60)
    assert not worker.is_alive(), "the sign-in did not end"
    assert "error" not in outcome, outcome.get("error")
    return base64.b64decode(outcome["result"]).decode(), person


def test_register_then_sign_in_with_a_security_key(
    realm: Rig, display: str, chromium: BrowserSpec, capture: CaptureProxy, profile: Path
) -> None:
    from selenium.webdriver.common.virtual_authenticator import (
        Protocol,
        Transport,
        VirtualAuthenticatorOptions,
    )

    url = realm.idp_urls[IDP]
    with launch(chromium, capture, profile, headless=False) as driver:
        driver.add_virtual_authenticator(
            VirtualAuthenticatorOptions(
                protocol=Protocol.CTAP2,
                transport=Transport.USB,
                has_resident_key=True,
                has_user_verification=True,
                is_user_verified=True,
            )
        )
        # First sign-in: Keycloak asks aws_user to register a key (the required action).
        saml, person = sign_in_pressing(driver, display, capture, url, "registerWebAuthn")
        assert USER in saml and realm.idp_provider_arns[IDP] in saml
        assert person.asked() == ["username", "password"]  # nothing typed into the key page
        # Keycloak asks for the key's label in a dialog: dismissed, so it keeps its default.
        assert any("passkey's label" in said for said in person.said())
        assert len(webauthn_keys(realm)) == 1
        assert len(driver.get_credentials()) == 1  # the virtual key holds the credential

        # Second sign-in, without the IdP session: password, then the key as second factor.
        realm.log_out(USER)
        saml, person = sign_in_pressing(driver, display, capture, url, "authenticateWebAuthnButton")
        assert USER in saml and realm.role_user_arn in saml
        assert person.asked() == ["username", "password"]
        assert driver.get_credentials()[0].sign_count >= 1
