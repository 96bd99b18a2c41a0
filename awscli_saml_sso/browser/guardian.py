"""A guardian process that ends the browser when the tool dies without tearing it down.

On Linux the kernel kills the driver when the tool dies (a parent-death signal, see
chromium.py). macOS and Windows have no such signal, so a small watcher does it: the tool
starts `python -m awscli_saml_sso.browser.guardian PROFILE_DIR` with a pipe as its stdin
and keeps the writing end. The operating system closes that end however the tool ends
(SIGKILL and TerminateProcess included), so the guardian reads end-of-file, and then ends
the process tree of every driver it was told about and anything still running on the
profile, with psutil. After a normal teardown the tool says `done` and the guardian leaves
without touching anything.

The pipe carries lines: `watch PID` (a driver to end with its tree), then `done`.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from awscli_saml_sso.browser import processes

logger = logging.getLogger(__name__)

_STOP_TIMEOUT = 5.0


class Guardian:
    """The tool's side of the pipe: tell the guardian what to watch, then that all is done."""

    def __init__(self, process: subprocess.Popen[str] | None) -> None:
        self.process = process

    def _send(self, line: str) -> None:
        stdin: IO[str] | None = self.process.stdin if self.process else None
        if stdin is None:
            return
        try:
            stdin.write(line + "\n")
            stdin.flush()
        except (OSError, ValueError):
            logger.debug("the guardian is gone", exc_info=True)

    def watch(self, pid: int | None) -> None:
        """End process `pid` and its tree if the tool dies from now on."""
        if pid is not None:
            self._send(f"watch {pid}")

    def done(self) -> None:
        """The tool tore the browser down itself: let the guardian go without acting."""
        if self.process is None:
            return
        self._send("done")
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(_STOP_TIMEOUT)


def start(profile_dir: Path) -> Guardian:
    """Start a guardian for the browser on `profile_dir` (a no-op Guardian if Python cannot
    be started again, e.g. in an embedded interpreter, or the start fails)."""
    if not sys.executable:
        logger.debug("no Python executable to start a guardian with")
        return Guardian(None)
    popen_kw: dict[str, Any] = {}
    if sys.platform == "win32":
        # Its own process group: Ctrl-C in the console must not end it before the tool's
        # teardown; no console window of its own.
        popen_kw["creationflags"] = (
            subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        )
    else:
        popen_kw["start_new_session"] = True  # Ctrl-C in the terminal does not reach it
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(profile_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            **popen_kw,
        )
    except OSError:
        # The sign-in still works; only a crash of this process could then leave a browser.
        logger.debug("could not start the guardian", exc_info=True)
        return Guardian(None)
    return Guardian(process)


def guard(lines: Iterable[str], profile_dir: Path) -> bool:
    """Read the tool's lines until `done` (return False) or end-of-file (end the watched
    trees and the profile's processes, return True)."""
    import psutil

    watched: list[psutil.Process] = []
    for line in lines:
        word, _, argument = line.strip().partition(" ")
        if word == "done":
            return False
        if word == "watch" and argument.isdigit():
            # psutil remembers the start time: a recycled PID is never mistaken for it.
            with contextlib.suppress(psutil.Error):
                watched.append(psutil.Process(int(argument)))
    for process in watched:
        with contextlib.suppress(psutil.Error):
            if process.is_running():
                processes.end_tree(process.pid)
    processes.end_profile_users(profile_dir)
    return True


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m awscli_saml_sso.browser.guardian PROFILE_DIR", file=sys.stderr)
        return 2
    if sys.platform != "win32":
        # Keep running if the tool's terminal hangs up or Ctrl-C reaches our session.
        import signal

        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    guard(sys.stdin, Path(argv[1]))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process by start()
    sys.exit(main(sys.argv))
