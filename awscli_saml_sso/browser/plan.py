"""What a browser capture is asked to do and what it returns: light, imported by every run.

The capture itself (`capture`: the proxy, the browser, autofill) loads only when a run needs a
browser; a replayed session, a still-valid profile or a cached key never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from awscli_saml_sso.browser.discovery import resolve_browser
from awscli_saml_sso.network import Router

HEADLESS_TIMEOUT = 120.0
VISIBLE_TIMEOUT = 300.0
# A headless page without fields that stays the same this long, and is not a page where the
# person acts elsewhere (a push), is handed over to the person in a visible window; never
# later than half the time limit, so that a short --timeout still leaves time to hand over.
HAND_OVER_AFTER = 15.0


@dataclass(frozen=True)
class BrowserPlan:
    """How one capture drives the browser, and where it keeps its files."""

    browser: str | None  # a name, or None for the first installed one
    driver_path: Path | None
    visible: bool
    autofill: bool  # False: the person types everything (--use-browser)
    timeout: float | None
    profile_dir: Path  # the IdP's persistent browser profile
    ca_dir: Path  # the capture proxy's CA
    debug_dir: Path | None = None  # where a stuck page is saved (--log-level DEBUG)
    router: Router | None = None  # the upstream proxy rule; None: always direct
    upstream_ca: Path | None = None  # CAs for the IdP's TLS (network.ca_bundle)
    integrated_auth: tuple[str, ...] = ()  # hosts that may get a Kerberos ticket
    hand_over: bool = False  # a stuck headless sign-in reopens in a visible window

    @property
    def time_limit(self) -> float:
        return self.timeout or (VISIBLE_TIMEOUT if self.visible else HEADLESS_TIMEOUT)

    @property
    def hand_over_after(self) -> float:
        """How long a stuck headless page waits before it is handed over to the person."""
        return min(HAND_OVER_AFTER, self.time_limit / 2)


@dataclass(frozen=True)
class Capture:
    """A captured SAMLResponse (base64, as posted), the browser that captured it, and the
    browser's cookies at that moment (for idp/sessions.py to keep the IdP's own)."""

    saml_response: str
    browser: str
    cookies: tuple[dict[str, Any], ...] = field(default=(), repr=False)


def browser_name(plan: BrowserPlan) -> str:
    """The browser this plan will drive (raises BrowserNotFound / UsageError early)."""
    return resolve_browser(plan.browser, plan.driver_path).name
