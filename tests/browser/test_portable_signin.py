"""A whole headless sign-in that needs nothing but a browser and its driver: the product's
capture (proxy, browser, autofill, teardown) against the local fake IdP.

Marked `portable`: the CI workflow (.github/workflows/platforms.yml) runs it on Windows and
macOS with whichever Chromium-family browser and driver the runner has.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.fake_idp import PASSWORD, USERNAME, FakeIdP

from awscli_saml_sso.browser import processes
from awscli_saml_sso.browser.capture import capture_assertion
from awscli_saml_sso.browser.plan import BrowserPlan

pytestmark = pytest.mark.portable


@dataclass
class Answers:
    """A Prompter that answers like a person who knows the fake IdP's account."""

    said: list[str] = field(default_factory=list)

    def username(self) -> str:
        return USERNAME

    def password(self) -> str:
        return PASSWORD

    def mfa_code(self, hint: str) -> str:
        raise AssertionError("the single-page flow asks for no code")

    def info(self, message: str) -> None:
        self.said.append(message)

    def approve_origin(self, origin: str) -> bool:
        raise AssertionError(f"the fake IdP stays on its own origin, not {origin}")


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    with FakeIdP() as server:
        yield server


def test_headless_sign_in_against_a_local_page(idp: FakeIdP, tmp_path: Path) -> None:
    profile = tmp_path / "browser" / "fake"
    plan = BrowserPlan(
        browser=os.environ.get("ASS_TEST_BROWSER") or None,  # CI: chrome or edge
        driver_path=None,
        visible=False,
        autofill=True,
        timeout=60,
        profile_dir=profile,
        ca_dir=tmp_path / "proxy",
    )
    capture = capture_assertion(idp.url("/single/"), plan, Answers())
    assert 'ID="single-alice"' in base64.b64decode(capture.saml_response).decode()
    assert processes.profile_users(profile) == []
