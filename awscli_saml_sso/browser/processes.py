"""Ending a browser's whole process tree, on every platform (psutil).

A browser is a tree: the driver, the browser, its renderers, GPU and network services, a
crash handler that leaves the tree. Teardown ends the driver's tree, then anything still
running on the exact browser profile (a process re-parented after its driver died).
The tests use the same helpers to prove that nothing outlives a run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

logger = logging.getLogger(__name__)

GRACE = 2.0


def _tree(pid: int) -> list[psutil.Process]:
    """The process `pid` and all its descendants (those still running)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def end(processes: Iterable[psutil.Process], grace: float = GRACE) -> None:
    """Terminate `processes`, wait up to `grace` seconds, then kill what is left."""
    import psutil

    alive = [p for p in processes if p.pid != os.getpid()]
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.terminate()
    _, alive = psutil.wait_procs(alive, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.kill()
    psutil.wait_procs(alive, timeout=grace)


def end_tree(pid: int | None, grace: float = GRACE) -> None:
    """End process `pid` and every descendant it has now."""
    if pid is not None:
        end(_tree(pid), grace)


def uses_profile(cmdline: Iterable[str], profile_dir: Path) -> bool:
    """True when a command line runs on exactly this profile (never on `corp2` for `corp`).

    Chromium names it in `--user-data-dir=DIR`, Firefox in `-profile DIR`, and Chromium's
    crash handler names a directory inside it (`--database=DIR/Crash Reports`).
    """
    profile = str(profile_dir)
    words = list(cmdline)
    for index, word in enumerate(words):
        if word == f"--user-data-dir={profile}":
            return True
        if word in ("-profile", "--profile") and words[index + 1 : index + 2] == [profile]:
            return True
        if f"={profile}{os.sep}" in word:
            return True
    return False


def profile_users(profile_dir: Path) -> list[psutil.Process]:
    """Processes (of any parent) running on exactly `profile_dir`."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if process.pid != os.getpid() and uses_profile(cmdline, profile_dir):
            found.append(process)
    return found


def end_profile_users(profile_dir: Path, grace: float = GRACE) -> None:
    """End every process still running on `profile_dir`, with its descendants."""
    users = profile_users(profile_dir)
    if users:
        logger.debug("ending %d leftover browser process(es)", len(users))
    tree: dict[int, psutil.Process] = {}
    for process in users:
        for member in _tree(process.pid):
            tree[member.pid] = member
    end(tree.values(), grace)


def die_with_parent(*, kill: bool) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to signal a driver when this process dies (even by SIGKILL):
    SIGKILL with `kill` (chromedriver: Chromium, on its pipe, exits with it), else SIGTERM
    (geckodriver closes Firefox on SIGTERM but, killed, leaves it running). None elsewhere:
    macOS and Windows have no such signal (browser/guardian.py stands in).

    Resolved before the fork: the function run in the child only makes one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    number = int(signal.SIGKILL if kill else signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, number)

    return preexec
