"""Start the chosen browser behind the capture proxy: Chromium's family or Firefox.

Each family trusts our proxy its own way: Chromium by the pin of the CA's key, Firefox by
the CA imported into its private profile. Both are context managers that leave no process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.browser.chromium import open_browser as open_chromium
from awscli_saml_sso.browser.discovery import BrowserSpec
from awscli_saml_sso.browser.firefox import open_firefox

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


@contextlib.contextmanager
def open_browser(
    spec: BrowserSpec,
    *,
    headless: bool,
    profile_dir: Path,
    proxy_port: int,
    ca_spki_sha256: str,
    ca_cert: Path,
    start_timeout: float | None = None,
    profile_wait: float = 0.0,
    integrated_auth: tuple[str, ...] = (),
) -> Iterator[WebDriver]:
    """Start `spec`'s browser behind the proxy on `proxy_port` and yield its WebDriver.

    `ca_spki_sha256` is the pin of the proxy's CA (Chromium), `ca_cert` its PEM file
    (Firefox); `start_timeout` defaults to each family's own; `integrated_auth` names the
    hosts that may receive the person's Kerberos ticket (Negotiate). Raises what
    chromium.open_browser and firefox.open_firefox raise.
    """
    limit: dict[str, Any] = {} if start_timeout is None else {"start_timeout": start_timeout}
    if spec.name == "firefox":
        browser = open_firefox(
            spec,
            headless=headless,
            profile_dir=profile_dir,
            proxy_port=proxy_port,
            ca_cert=ca_cert,
            profile_wait=profile_wait,
            integrated_auth=integrated_auth,
            **limit,
        )
    else:
        browser = open_chromium(
            spec,
            headless=headless,
            profile_dir=profile_dir,
            proxy_port=proxy_port,
            ca_spki_sha256=ca_spki_sha256,
            profile_wait=profile_wait,
            integrated_auth=integrated_auth,
            **limit,
        )
    with browser as driver:
        yield driver
