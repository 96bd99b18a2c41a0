"""What every browser family does with its WebDriver: start it under a watchdog, quit it
within a time limit, end its process tree, and keep Ctrl-C out of the teardown.

Chromium (chromedriver) and Firefox (geckodriver) differ in options and services, not here.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.browser import processes
from awscli_saml_sso.browser.discovery import DRIVERS, BrowserSpec
from awscli_saml_sso.errors import SignInError
from awscli_saml_sso.limits import TimeLimitExceeded, call_with_time_limit

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

logger = logging.getLogger(__name__)

#: driver.quit() waits at most this long; the process tree is ended afterwards anyway.
QUIT_TIMEOUT = 5.0
#: Every command after the start waits at most this long: a wedged driver must not hang.
COMMAND_TIMEOUT = 30


def start_with_watchdog(
    spec: BrowserSpec,
    service: Any,
    start_timeout: float,
    create: Callable[[], WebDriver],
    *,
    label: str | None = None,
) -> WebDriver:
    """`create()` the WebDriver session; a watchdog ends the driver's tree if that takes
    longer than `start_timeout`. Raises SignInError with one sentence (see start_failure)."""
    from selenium.common.exceptions import WebDriverException

    expired = threading.Event()

    def watchdog() -> None:
        expired.set()
        end_driver(service)

    timer = threading.Timer(start_timeout, watchdog)
    timer.daemon = True
    started = time.monotonic()
    timer.start()
    try:
        driver = create()
    except WebDriverException as exc:
        if expired.is_set():
            raise SignInError(
                f"{label or spec.name} did not start within {start_timeout:.0f} seconds."
            ) from exc
        raise SignInError(start_failure(spec, exc)) from exc
    finally:
        timer.cancel()
    executor: Any = driver.command_executor
    executor._client_config.timeout = COMMAND_TIMEOUT
    logger.debug("%s started in %.2f s", spec.name, time.monotonic() - started)
    return driver


def start_failure(spec: BrowserSpec, exc: Exception) -> str:
    """The sentence for a driver that would not start a session."""
    text = str(getattr(exc, "msg", None) or exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "only supports" in first:
        return (
            f"The driver {spec.driver} does not match the installed {spec.name} ({first}); "
            "install the matching driver or pass --driver-path."
        )
    if "user data directory is already in use" in first:
        return "Another browser is using the sign-in profile; close it and try again."
    return f"{spec.name} could not be started through {DRIVERS[spec.name]}: {first}"


def quit_driver(driver: WebDriver) -> None:
    """driver.quit(), bounded in time: a wedged driver must not stall the teardown."""
    try:
        call_with_time_limit(lambda: _quietly_quit(driver), QUIT_TIMEOUT, "driver-quit")
    except TimeLimitExceeded:
        logger.debug("driver.quit() did not return in time; killing the browser")


def _quietly_quit(driver: WebDriver) -> None:
    try:
        # Leave a blank page as the session the browser restores next time, not an IdP page.
        driver.get("about:blank")
    except Exception:
        logger.debug("could not blank the page before quitting", exc_info=True)
    try:
        driver.quit()
    except Exception:
        logger.debug("driver.quit() failed", exc_info=True)


def end_driver(service: Any) -> None:
    """End the driver's whole tree (driver, browser, helpers) and reap the driver."""
    process: subprocess.Popen[bytes] | None = getattr(service, "process", None)
    if process is None:
        return
    processes.end_tree(process.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(2.0)


@contextlib.contextmanager
def no_second_interrupt() -> Iterator[None]:
    """Ignore Ctrl-C during the (bounded) teardown so it cannot leave processes behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
