"""Firefox through Selenium (geckodriver) behind the capture proxy, torn down completely.

Firefox has no equivalent of Chromium's key pin, so trust is given the other way round: the
capture proxy's CA is imported into the private profile's own certificate store (trust
``C,,``: a CA for web sites, nothing else) before the sign-in starts. Nothing accepts every
certificate (``accept_insecure_certs`` is set to False explicitly: Selenium's Firefox default
is True), and the CA never goes anywhere but this profile.

The import uses NSS's ``certutil`` when it is installed; otherwise a short provisioning
session of Firefox with system access adds the CA, and only when the profile or the CA is
new. The sign-in session itself never gets system access.

Every request, localhost included, goes to the capture proxy and nowhere else; Firefox's
own background traffic (telemetry, updates, safe browsing, captive portal detection,
remote settings) is switched off, and everything it writes stays inside the profile.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.browser import processes
from awscli_saml_sso.browser.discovery import BrowserSpec, download_driver, driver_on_loopback

# The browser-neutral parts of a teardown are Chromium's, shared rather than copied.
from awscli_saml_sso.browser.driver import (
    end_driver,
    no_second_interrupt,
    quit_driver,
    start_with_watchdog,
)
from awscli_saml_sso.browser.profile import locked_profile
from awscli_saml_sso.errors import SignInError, UsageError

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

logger = logging.getLogger(__name__)

_CERTUTIL_TIMEOUT = 30.0
# Firefox starts slower than Chromium (a new profile's first start writes ~50 files):
# 10-22 s measured on a 2-core machine at load 12-20, past 30 s at load 20+.
START_TIMEOUT = 60.0
# Our CA's name in the profile's store; the fingerprint tells a renewed CA from the old one.
CA_NICKNAME_PREFIX = "awscli_saml_sso capture proxy"
_TRUST_FLAGS = re.compile(r"[A-Za-z]*,[A-Za-z]*,[A-Za-z]*")
# Where the provisioning session records which CA it imported (certutil lists it instead).
_PROVISIONED_STAMP = "awscli_saml_sso-ca.sha256"
# A privileged script (provisioning session only): add our CA with web-site trust.
_ADD_CA_JS = """
const certdb = Cc["@mozilla.org/security/x509certdb;1"].getService(Ci.nsIX509CertDB);
certdb.addCertFromBase64(arguments[0], "C,,");
return true;
"""


# -- trusting our CA, in this profile only -------------------------------------------------


def _ca_der(ca_cert: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(Path(ca_cert).read_bytes())
    except (OSError, ValueError) as exc:
        raise SignInError(f"The capture proxy's CA {ca_cert} is unreadable: {exc}.") from exc
    return cert.public_bytes(serialization.Encoding.DER)


def ca_nickname(ca_cert: Path) -> str:
    """The name our CA has in the profile's store (it changes when the CA is renewed)."""
    return f"{CA_NICKNAME_PREFIX} {hashlib.sha256(_ca_der(ca_cert)).hexdigest()[:16]}"


def _private_files() -> dict[str, Any]:
    """Popen arguments so that files a child creates are private to the user (POSIX)."""
    return {"umask": 0o077} if os.name == "posix" else {}


def _certutil(certutil: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [certutil, *args],
            capture_output=True,
            text=True,
            timeout=_CERTUTIL_TIMEOUT,
            check=False,
            **_private_files(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SignInError(f"certutil could not update the Firefox profile: {exc}.") from exc


def _checked(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SignInError(
            f"certutil could not {what} in the Firefox profile: "
            f"{detail[-1] if detail else 'exit ' + str(result.returncode)}."
        )


def trusted_nicknames(certutil: str, profile_dir: Path) -> dict[str, str]:
    """The certificates in the profile's store: nickname -> trust flags (e.g. ``C,,``)."""
    listing = _certutil(certutil, "-L", "-d", f"sql:{profile_dir}")
    _checked(listing, "list the certificates")
    found = {}
    for line in listing.stdout.splitlines():
        name, _, flags = line.rstrip().rpartition(" ")
        # A certificate's line ends in its three trust fields; the header's in "SSL,S/MIME,...".
        if name.strip() and _TRUST_FLAGS.fullmatch(flags):
            found[name.strip()] = flags
    return found


def import_ca_with_certutil(certutil: str, profile_dir: Path, ca_cert: Path) -> None:
    """Make the profile trust our current CA for web sites, and no earlier CA of ours."""
    store = f"sql:{profile_dir}"
    if not (profile_dir / "cert9.db").exists():
        _checked(_certutil(certutil, "-N", "-d", store, "--empty-password"), "create the store")
    wanted = ca_nickname(ca_cert)
    present = trusted_nicknames(certutil, profile_dir)
    for name in present:
        if name.startswith(CA_NICKNAME_PREFIX) and name != wanted:
            _checked(_certutil(certutil, "-D", "-d", store, "-n", name), "remove an old CA")
    if present.get(wanted) != "C,,":
        result = _certutil(
            certutil, "-A", "-d", store, "-n", wanted, "-t", "C,,", "-i", str(ca_cert)
        )
        _checked(result, "import the capture proxy's CA")
        logger.debug("imported the capture proxy's CA into %s with certutil", profile_dir)


def _needs_provisioning(profile_dir: Path, ca_cert: Path) -> bool:
    stamp = profile_dir / _PROVISIONED_STAMP
    try:
        recorded = stamp.read_text(encoding="ascii").strip()
    except OSError:
        recorded = ""
    return recorded != ca_nickname(ca_cert) or not (profile_dir / "cert9.db").exists()


def _provision(
    spec: BrowserSpec,
    driver_path: Path,
    profile_dir: Path,
    ca_cert: Path,
    proxy_port: int,
    start_timeout: float,
) -> None:
    """Add our CA through a short headless session with system access (no certutil here).

    The store is started afresh, so a CA of ours from before a renewal is gone with it; the
    profile's store holds nothing else of ours. The session loads no page.
    """
    (profile_dir / _PROVISIONED_STAMP).unlink(missing_ok=True)
    for name in ("cert9.db", "cert8.db"):
        (profile_dir / name).unlink(missing_ok=True)
    der = base64.b64encode(_ca_der(ca_cert)).decode("ascii")
    options = firefox_options(spec, headless=True, profile_dir=profile_dir, proxy_port=proxy_port)
    service = _make_service(driver_path, profile_dir, system_access=True)
    started = time.monotonic()
    driver = None
    try:
        driver = _start_driver(spec, service, options, start_timeout)
        with driver.context(driver.CONTEXT_CHROME):  # type: ignore[attr-defined]
            driver.execute_script(_ADD_CA_JS, der)
    except SignInError:
        raise
    except Exception as exc:  # a Selenium error, reported as one sentence
        raise SignInError(f"Firefox could not import the capture proxy's CA: {exc}.") from exc
    finally:
        if driver is not None:
            quit_driver(driver)
        end_driver(service)
        processes.end_profile_users(profile_dir)
    (profile_dir / _PROVISIONED_STAMP).write_text(ca_nickname(ca_cert) + "\n", encoding="ascii")
    logger.debug("provisioned the Firefox profile's CA in %.2f s", time.monotonic() - started)


def trust_our_ca(
    spec: BrowserSpec,
    driver_path: Path,
    profile_dir: Path,
    ca_cert: Path,
    proxy_port: int,
    *,
    certutil: str | None,
    start_timeout: float = START_TIMEOUT,
) -> None:
    """Make the profile trust our proxy's CA before the sign-in (certutil, else provisioning)."""
    if certutil is not None:
        import_ca_with_certutil(certutil, profile_dir, ca_cert)
    elif _needs_provisioning(profile_dir, ca_cert):
        _provision(spec, driver_path, profile_dir, ca_cert, proxy_port, start_timeout)


# -- the browser ----------------------------------------------------------------------------


def firefox_prefs(
    profile_dir: Path, proxy_port: int, integrated_auth: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The preferences of every session: our proxy only, no background traffic, no secrets;
    Negotiate (Kerberos) answered for the `integrated_auth` hosts only, never delegated."""
    proxy = {
        "network.proxy.type": 1,  # manual
        "network.proxy.http": "127.0.0.1",
        "network.proxy.http_port": proxy_port,
        "network.proxy.ssl": "127.0.0.1",
        "network.proxy.ssl_port": proxy_port,
        "network.proxy.socks": "",
        "network.proxy.no_proxies_on": "",
        # Without this Firefox sends localhost directly, so a local IdP would bypass us.
        "network.proxy.allow_hijacking_localhost": True,
        "network.proxy.failover_direct": False,
        "network.trr.mode": 5,  # no DNS over HTTPS
        "network.dns.disablePrefetch": True,
        "network.prefetch-next": False,
        "network.predictor.enabled": False,
        "network.http.speculative-parallel-limit": 0,
    }
    trust = {
        # Trust is the profile's store: no OS stores, no clicking past a certificate error.
        "security.enterprise_roots.enabled": False,
        "security.certerror.hideAddException": True,
        "browser.xul.error_pages.expert_bad_cert": False,
        "security.OCSP.enabled": 0,
        "security.remote_settings.crlite_filters.enabled": False,
        "security.remote_settings.intermediates.enabled": False,
    }
    quiet = {
        "toolkit.telemetry.enabled": False,
        "toolkit.telemetry.unified": False,
        "toolkit.telemetry.archive.enabled": False,
        "toolkit.telemetry.server": "",
        "datareporting.healthreport.uploadEnabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "datareporting.policy.firstRunURL": "",
        "app.normandy.enabled": False,
        "app.shield.optoutstudies.enabled": False,
        "app.update.auto": False,
        "app.update.disabledForTesting": True,
        "extensions.update.enabled": False,
        "extensions.getAddons.cache.enabled": False,
        "extensions.systemAddon.update.enabled": False,
        "browser.search.update": False,
        "browser.safebrowsing.malware.enabled": False,
        "browser.safebrowsing.phishing.enabled": False,
        "browser.safebrowsing.downloads.enabled": False,
        "browser.safebrowsing.downloads.remote.enabled": False,
        "browser.safebrowsing.blockedURIs.enabled": False,
        "browser.safebrowsing.provider.mozilla.updateURL": "",
        "browser.safebrowsing.provider.google4.updateURL": "",
        "network.captive-portal-service.enabled": False,
        "network.connectivity-service.enabled": False,
        # Honoured only with MOZ_REMOTE_SETTINGS_DEVTOOLS=1 in the environment (we set it).
        "services.settings.server": "data:,#remote-settings-off/v1",
        "media.gmp-manager.updateEnabled": False,
        "geo.provider.network.url": "",
        "browser.region.network.url": "",
        "browser.region.update.enabled": False,
        "browser.newtabpage.enabled": False,
        "browser.newtabpage.activity-stream.feeds.telemetry": False,
        "browser.newtabpage.activity-stream.telemetry": False,
        "browser.topsites.contile.enabled": False,
        "browser.discovery.enabled": False,
        "extensions.pocket.enabled": False,
        "identity.fxaccounts.enabled": False,
        "dom.push.connection.enabled": False,
        "browser.shell.checkDefaultBrowser": False,
        "browser.aboutwelcome.enabled": False,
        "browser.startup.homepage_override.mstone": "ignore",
    }
    private = {
        # The password must never be stored by the browser in the profile.
        "signon.rememberSignons": False,
        "signon.autofillForms": False,
        "signon.generation.enabled": False,
        "extensions.formautofill.addresses.enabled": False,
        "extensions.formautofill.creditCards.enabled": False,
        "browser.cache.disk.enable": False,
        "browser.download.folderList": 2,
        "browser.download.dir": str(profile_dir / "downloads"),
        "browser.download.useDownloadDir": True,
        # Restore the last session (a blank page), and with it the IdP's session cookies.
        "browser.startup.page": 3,
        "browser.sessionstore.resume_from_crash": False,
    }
    negotiate = {
        "network.negotiate-auth.trusted-uris": ",".join(integrated_auth),
        "network.negotiate-auth.delegation-uris": "",
        "network.automatic-ntlm-auth.trusted-uris": "",
    }
    return {**proxy, **trust, **quiet, **private, **negotiate}


def firefox_options(
    spec: BrowserSpec,
    *,
    headless: bool,
    profile_dir: Path,
    proxy_port: int,
    integrated_auth: tuple[str, ...] = (),
) -> Any:
    """Selenium options: this profile used in place, our prefs, no certificate accepted blindly."""
    from selenium.webdriver.firefox.options import Options

    options = Options()
    if spec.binary is not None:
        options.binary_location = str(spec.binary)
    # The profile in place (geckodriver would otherwise copy it to a temporary directory).
    options.add_argument("-profile")
    options.add_argument(str(profile_dir))
    options.add_argument("-no-remote")
    if headless:
        options.add_argument("-headless")
    for name, value in firefox_prefs(profile_dir, proxy_port, integrated_auth).items():
        options.set_preference(name, value)
    # Selenium's Firefox default is True ("accept all certificates"): never.
    options.accept_insecure_certs = False
    # No remote-debugging WebSocket port for any local process to reach (Selenium's default
    # asks for one); the session is driven through geckodriver alone.
    options.set_capability("moz:debuggerAddress", False)
    # Commands return at once; fill_forms polls the page itself, with its own deadline.
    options.page_load_strategy = "none"
    driver_on_loopback(options)
    return options


def _environment(profile_dir: Path) -> dict[str, str]:
    """geckodriver's (and so Firefox's) environment: its files inside the profile."""
    inside = {
        "XDG_CONFIG_HOME": profile_dir / "xdg-config",
        "XDG_CACHE_HOME": profile_dir / "xdg-cache",
        "XDG_DATA_HOME": profile_dir / "xdg-data",
        "XDG_STATE_HOME": profile_dir / "xdg-state",
        "TMPDIR": profile_dir / "tmp",
    }
    for path in inside.values():
        path.mkdir(mode=0o700, exist_ok=True)
    (profile_dir / "downloads").mkdir(mode=0o700, exist_ok=True)
    return dict(
        os.environ,
        **{key: str(path) for key, path in inside.items()},
        # Release builds honour services.settings.server only with this set.
        MOZ_REMOTE_SETTINGS_DEVTOOLS="1",
        MOZ_CRASHREPORTER_DISABLE="1",
    )


def _make_service(driver_path: Path, profile_dir: Path, *, system_access: bool = False) -> Any:
    from selenium.webdriver.firefox.service import Service

    popen_kw: dict[str, Any] = _private_files()
    if os.name == "posix":
        # Own session: Ctrl-C in the terminal does not reach the browser before we tear it
        # down in order.
        popen_kw["start_new_session"] = True
        preexec = processes.die_with_parent(kill=False)
        if preexec is not None:
            popen_kw["preexec_fn"] = preexec
    return Service(
        executable_path=str(driver_path),
        service_args=["--allow-system-access"] if system_access else [],
        log_output=subprocess.DEVNULL,
        env=_environment(profile_dir),
        popen_kw=popen_kw,
    )


def _start_driver(spec: BrowserSpec, service: Any, options: Any, start_timeout: float) -> WebDriver:
    """Start geckodriver and Firefox under the watchdog (driver.start_with_watchdog)."""

    def create() -> WebDriver:
        from selenium.webdriver import Firefox

        return Firefox(options=options, service=service)

    return start_with_watchdog(spec, service, start_timeout, create, label="Firefox")


@contextlib.contextmanager
def open_firefox(
    spec: BrowserSpec,
    *,
    headless: bool,
    profile_dir: Path,
    proxy_port: int,
    ca_cert: Path,
    start_timeout: float = START_TIMEOUT,
    profile_wait: float = 0.0,
    certutil: str | None = "certutil",
    integrated_auth: tuple[str, ...] = (),
) -> Iterator[WebDriver]:
    """Start Firefox behind the capture proxy, trusting its CA `ca_cert`; yield the WebDriver.

    `certutil` names NSS's certutil (looked up on PATH); when it is None or missing, a
    provisioning session imports the CA instead.
    On leaving (normally, on an exception or on KeyboardInterrupt) the driver is quit within
    a bounded time and every process of the driver's tree and of the profile is ended.

    Raises SignInError when the profile stays in use by another run for `profile_wait`
    seconds, the CA cannot be imported or Firefox cannot start, UsageError when a visible
    browser has no display, and BrowserNotFound when there is no geckodriver.
    """
    if not headless and sys.platform.startswith("linux"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UsageError(
                "a visible browser (--show-browser, --use-browser) needs a display, and "
                "neither DISPLAY nor WAYLAND_DISPLAY is set; sign in headless instead"
            )
    certutil = shutil.which(certutil) if certutil else None
    profile_dir = Path(profile_dir)
    with locked_profile(profile_dir, profile_wait):
        driver_path = spec.driver or download_driver(spec)
        # A Firefox left on this profile by a killed run would hold the store open.
        processes.end_profile_users(profile_dir)
        trust_our_ca(
            spec,
            driver_path,
            profile_dir,
            ca_cert,
            proxy_port,
            certutil=certutil,
            start_timeout=start_timeout,
        )
        options = firefox_options(
            spec,
            headless=headless,
            profile_dir=profile_dir,
            proxy_port=proxy_port,
            integrated_auth=integrated_auth,
        )
        service = _make_service(driver_path, profile_dir)
        driver = None
        try:
            driver = _start_driver(spec, service, options, start_timeout)
            yield driver
        finally:
            with no_second_interrupt():
                try:
                    if driver is not None:
                        quit_driver(driver)
                finally:
                    end_driver(service)
                    processes.end_profile_users(profile_dir)
