"""Pure helpers of the form-filling loop (no browser)."""

from __future__ import annotations

from awscli_saml_sso.browser.autofill import _display_url


def test_display_url_drops_query_and_fragment() -> None:
    assert _display_url("http://h:1/a/b?session_code=x&tab_id=y#f") == "http://h:1/a/b"
    assert _display_url("about:blank") == "about:blank"
