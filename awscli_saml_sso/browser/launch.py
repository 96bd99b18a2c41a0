"""Start the chosen browser behind the capture proxy: Chromium's family or Firefox.

Each family trusts our proxy its own way: Chromium by the pin of the CA's key, Firefox by
the CA imported into its private profile. Both are context managers that leave no process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

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
    start_timeout: float = 30.0,
    profile_wait: float = 0.0,
) -> Iterator[WebDriver]:
    """Start `spec`'s browser behind the proxy on `proxy_port` and yield its WebDriver.

    `ca_spki_sha256` is the pin of the proxy's CA (Chromium), `ca_cert` its PEM file
    (Firefox). Raises what chromium.open_browser and firefox.open_firefox raise.
    """
    if spec.name == "firefox":
        browser = open_firefox(
            spec,
            headless=headless,
            profile_dir=profile_dir,
            proxy_port=proxy_port,
            ca_cert=ca_cert,
            start_timeout=start_timeout,
            profile_wait=profile_wait,
        )
    else:
        browser = open_chromium(
            spec,
            headless=headless,
            profile_dir=profile_dir,
            proxy_port=proxy_port,
            ca_spki_sha256=ca_spki_sha256,
            start_timeout=start_timeout,
            profile_wait=profile_wait,
        )
    with browser as driver:
        yield driver
