"""Open the AWS console for one profile in a browser window of its own.

The console keeps its session in cookies, so two accounts cannot share a browser profile.
Each AWS profile gets its own browser profile (`console/<profile>/` in the tool's directory,
0700): a Chromium-family browser found by our discovery starts there with `--user-data-dir`,
visible and without the capture proxy, and stays open after we exit: it is the person's
window. Without such a browser, the system's default browser opens the page (one shared
profile). The sign-in URL never appears in a process's arguments: the browser opens a 0600
local page that forwards to it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from awscli_saml_sso.browser.discovery import find_browsers
from awscli_saml_sso.errors import SignInError
from awscli_saml_sso.files import atomic_write, ensure_private_dir

log = logging.getLogger(__name__)

CHROMIUM_FAMILY = ("chromium", "chrome", "edge")


def forwarding_page(directory: Path, url: str) -> Path:
    """A private local page that sends the browser on to `url` (the token stays off argv)."""
    import html

    ensure_private_dir(directory)
    page = directory / "open-console.html"
    target = html.escape(url, quote=True)
    body = (
        '<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f'<meta http-equiv="refresh" content="0;url={target}">'
        f'<title>AWS console</title><a href="{target}">Open the AWS console</a>'
    )
    atomic_write(page, body.encode("utf-8"))
    return page


def chromium_arguments(binary: Path, profile_dir: Path, page: Path) -> list[str]:
    """The command line of a visible console window in its own profile."""
    arguments = [
        str(binary),
        f"--user-data-dir={profile_dir}",
        "--no-first-run",
        "--no-default-browser-check",
        "--new-window",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        arguments.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
    return [*arguments, page.as_uri()]


def open_console(url: str, profile_dir: Path) -> str:
    """Open `url` in a browser that uses `profile_dir`; returns how it was opened.

    Raises SignInError when no browser could be started.
    """
    ensure_private_dir(profile_dir)
    page = forwarding_page(profile_dir.parent, url)
    for spec in find_browsers():
        if spec.name in CHROMIUM_FAMILY and spec.binary is not None:
            arguments = chromium_arguments(spec.binary, profile_dir, page)
            try:
                subprocess.Popen(
                    arguments,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    # The person's window: it must survive our exit and our Ctrl-C.
                    start_new_session=sys.platform != "win32",
                )
            except OSError as exc:
                log.debug("starting %s failed: %s", spec.binary, exc)
                continue
            return f"{spec.name} with the browser profile {profile_dir}"
    import webbrowser  # only when no Chromium-family browser is installed

    if webbrowser.open(page.as_uri(), new=1):
        return "the default browser"
    raise SignInError(
        "no browser could be started to open the AWS console; use --print and open the URL yourself"
    )
