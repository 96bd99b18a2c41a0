"""The browser capture of an assertion: proxy and browser lifetimes around the form-filling loop.

selenium and mitmproxy load inside `capture_assertion`, only when a browser is needed; this
module itself (with autofill, the proxy, the launchers) is imported by `flow` only then too.
What a plan is lives in `plan`, which every run imports.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awscli_saml_sso import timing
from awscli_saml_sso.browser.autofill import NeedsHandOver, fill_forms
from awscli_saml_sso.browser.ca import cert_path, ensure_ca
from awscli_saml_sso.browser.discovery import BrowserSpec, resolve_browser
from awscli_saml_sso.browser.launch import open_browser
from awscli_saml_sso.browser.plan import BrowserPlan, Capture
from awscli_saml_sso.browser.proxy import CaptureProxy, free_loopback_port
from awscli_saml_sso.model import Prompter
from awscli_saml_sso.network import Router

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

log = logging.getLogger(__name__)


def start_proxy(
    ca_dir: Path,
    lifetimes: contextlib.ExitStack,
    *,
    router: Router | None = None,
    upstream_ca: Path | None = None,
) -> CaptureProxy:
    """Start the capture proxy so that the browser can start at the same time.

    The browser needs the proxy's port and its CA's pin. The port is chosen up front and the
    CA is read (or created, on a first run) before mitmproxy starts, so mitmproxy's import
    and start (~0.4 s) overlap the browser's start-up.
    """
    pin = ensure_ca(ca_dir)
    proxy = CaptureProxy(ca_dir, port=free_loopback_port(), router=router, upstream_ca=upstream_ca)
    # Only our own process tree (the driver, the browser) may use the proxy: no other local
    # process can post an assertion through it (checked per connection with psutil).
    proxy.browser_pid = os.getpid()
    lifetimes.callback(proxy.stop)
    proxy.begin()
    proxy.ca_spki_sha256 = pin
    return proxy


def capture_assertion(url: str, plan: BrowserPlan, prompter: Prompter) -> Capture:
    """Open the IdP-initiated `url` in a browser behind the capture proxy and return the
    SAMLResponse the IdP posts to AWS. Raises SignInError, UsageError, BrowserNotFound.
    """
    spec = resolve_browser(plan.browser, plan.driver_path)
    with contextlib.ExitStack() as lifetimes:  # unwound last-in first-out: browser, then proxy
        with timing.span("proxy start"):
            proxy = start_proxy(
                plan.ca_dir, lifetimes, router=plan.router, upstream_ca=plan.upstream_ca
            )
        hand_over = plan.hand_over and plan.autofill and not plan.visible
        try:
            saml_response, cookies = _sign_in(
                url, plan, prompter, spec, proxy, lifetimes, hand_over
            )
        except NeedsHandOver as stuck:
            # The headless browser is closed (its profile is free again); the person
            # finishes in a window on the same profile, autofill still doing what it can.
            prompter.info(
                f"Autofill cannot finish this sign-in ({stuck}); a browser window opens "
                "for you to finish it there."
            )
            visible = replace(plan, visible=True, hand_over=False)
            saml_response, cookies = _sign_in(url, visible, prompter, spec, proxy, lifetimes, False)
        teardown_started = timing.now()
    timing.record("browser teardown", teardown_started)
    return Capture(saml_response, spec.name, cookies)


def _sign_in(
    url: str,
    plan: BrowserPlan,
    prompter: Prompter,
    spec: BrowserSpec,
    proxy: CaptureProxy,
    lifetimes: contextlib.ExitStack,
    hand_over: bool,
) -> tuple[str, tuple[dict[str, Any], ...]]:
    """One browser (closed on NeedsHandOver, else with `lifetimes`) and the form-filling loop;
    the SAMLResponse and the browser's cookies at the capture."""
    with contextlib.ExitStack() as browser:
        with timing.span("browser start"):
            driver = browser.enter_context(
                open_browser(
                    spec,
                    headless=not plan.visible,
                    profile_dir=plan.profile_dir,
                    proxy_port=proxy.requested_port,
                    ca_spki_sha256=proxy.ca_spki_sha256,
                    ca_cert=cert_path(plan.ca_dir),
                    profile_wait=plan.time_limit,
                    integrated_auth=plan.integrated_auth,
                )
            )
            proxy.wait_ready()
        with timing.span("idp pages"):
            saml_response = fill_forms(
                driver,
                proxy,
                url,
                prompter=prompter,
                autofill=plan.autofill,
                timeout=plan.time_limit,
                debug_dir=plan.debug_dir,
                hand_over_after=plan.hand_over_after if hand_over else None,
            )
        cookies = browser_cookies(driver)
        lifetimes.push(browser.pop_all())  # success: the browser closes with the proxy
    return saml_response, cookies


def browser_cookies(driver: WebDriver) -> tuple[dict[str, Any], ...]:
    """Every cookie of the browser (Chromium's DevTools sees all sites; WebDriver alone sees
    only the current page's, which after the capture is AWS's). Empty when it cannot tell.
    """
    try:
        if hasattr(driver, "execute_cdp_cmd"):
            found = driver.execute_cdp_cmd("Network.getAllCookies", {}).get("cookies", [])
        else:
            found = driver.get_cookies()
    except Exception as exc:  # a browser gone or without the command: no replay next time
        log.debug("cannot read the browser's cookies: %s", exc)
        return ()
    return tuple(cookie for cookie in found if isinstance(cookie, dict))
