"""Autofill reads pages as a person does: one test per shape that once broke it (issue 13).

Real Chromium behind the capture proxy signs in at small pages of our own
(tests/support/shaped_idp.py); each page checks what it was sent, whatever its fields are
called, so a field filled with the wrong secret fails the sign-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.browsers import launch
from support.fake_idp import OTP_CODE, PASSWORD, PUSH_NUMBER, USERNAME
from support.shaped_idp import ShapedIdP

from awscli_saml_sso.browser.autofill import fill_forms
from awscli_saml_sso.browser.discovery import BrowserSpec
from awscli_saml_sso.browser.proxy import CaptureProxy
from awscli_saml_sso.errors import SignInError

pytestmark = pytest.mark.browser


@dataclass
class Person:
    """A Prompter that answers like a person with the right secrets, and records each call."""

    codes: bool = True  # whether a one-time code can be given
    calls: list[Any] = field(default_factory=list)

    def username(self) -> str:
        self.calls.append("username")
        return USERNAME

    def password(self) -> str:
        self.calls.append("password")
        return PASSWORD

    def mfa_code(self, hint: str) -> str:
        self.calls.append(("mfa_code", hint))
        return OTP_CODE

    def approve_origin(self, origin: str) -> bool:
        raise AssertionError(f"every shaped page stays on its own origin, not {origin}")

    def can_give_code(self) -> bool:
        return self.codes

    def info(self, message: str) -> None:
        self.calls.append(("info", message))


@pytest.fixture(scope="module")
def shaped() -> Iterator[ShapedIdP]:
    with ShapedIdP() as server:
        yield server


def sign_in(
    chromium: BrowserSpec,
    capture: CaptureProxy,
    profile: Path,
    url: str,
    person: Person,
    timeout: float = 30,
) -> str:
    with launch(chromium, capture, profile) as driver:
        return fill_forms(driver, capture, url, prompter=person, autofill=True, timeout=timeout)


def captured(saml_response: str) -> str:
    import base64

    return base64.b64decode(saml_response + "==").decode(errors="replace")


@pytest.mark.parametrize("shape", ["idtoken", "bare"])
def test_id_fragments_never_make_a_login_page_ask_for_a_code(
    shape: str, chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    # "idToken1"/"idToken2": labelled (idtoken, which also signs in by XHR and a script
    # redirect after emptying the password) or not labelled at all (bare).
    person = Person()
    sign_in(chromium, capture, profile, shaped.url(shape), person)
    assert person.calls == ["username", "password"]
    assert len(shaped.posted(shape)) == 1


def test_password_field_labelled_token_code_gets_the_code(
    chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    person = Person()
    sign_in(chromium, capture, profile, shaped.url("token"), person)
    assert person.calls == ["username", "password", ("mfa_code", "Token code")]
    assert [set(form.values()) for form in shaped.posted("token")] == [
        {USERNAME, PASSWORD},
        {OTP_CODE},
    ]


def test_span_with_a_click_handler_is_a_button(
    chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    sign_in(chromium, capture, profile, shaped.url("span"), Person())
    assert len(shaped.posted("span")) == 1


def test_a_click_the_page_ignores_is_followed_by_the_form_submit(
    chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    sign_in(chromium, capture, profile, shaped.url("dead"), Person())
    assert len(shaped.posted("dead")) == 1  # the password went out exactly once


def test_field_hints_are_not_idp_errors(
    chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    person = Person()
    sign_in(chromium, capture, profile, shaped.url("hints"), person)
    assert person.calls == ["username", "password"]


def test_a_lone_continue_is_pressed(
    chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    sign_in(chromium, capture, profile, shaped.url("continue"), Person())
    assert len(shaped.posted("continue")) == 2


def test_stay_signed_in_question_is_not_answered(
    chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    person = Person()
    with pytest.raises(SignInError, match="stuck on the page"):
        sign_in(chromium, capture, profile, shaped.url("kmsi"), person, timeout=6)
    assert len(shaped.posted("kmsi")) == 1  # the password; no answer to the question
    assert any(call[0] == "info" and "Stay signed in?" in call[1] for call in person.calls)


def test_choice_of_methods_takes_a_code_when_one_can_be_given(
    chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    person = Person()
    sign_in(chromium, capture, profile, shaped.url("methods"), person)
    assert ("mfa_code", "Code from your authenticator app") in person.calls
    assert [form.get("method") for form in shaped.posted("methods")] == [None, "app", None]


def test_choice_of_methods_takes_a_push_without_a_code_and_shows_the_number(
    chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    person = Person(codes=False)
    sign_in(chromium, capture, profile, shaped.url("push"), person)
    said = [call[1] for call in person.calls if call[0] == "info"]
    assert f">>> Number to match on your device: {PUSH_NUMBER} <<<" in said
    assert not any(call[0] == "mfa_code" for call in person.calls)


@pytest.mark.parametrize("shape", ["shadow", "frame"])
def test_fields_in_an_open_shadow_root_or_a_frame(
    shape: str, chromium: BrowserSpec, capture: CaptureProxy, shaped: ShapedIdP, profile: Path
) -> None:
    person = Person()
    sign_in(chromium, capture, profile, shaped.url(shape), person)
    assert person.calls == ["username", "password"]
    assert len(shaped.posted(shape)) == 1
