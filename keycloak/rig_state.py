"""What the rig started and who uses it: PIDs, leases, the lock, stopping.

The rig's ports are fixed, so there is one rig per machine and its state lives
in the machine-wide cache (``$ASS_RIG_CACHE/run``), not in a work tree: any
clone can see and stop it. Each service runs in its own process group, so
stopping the group also stops children such as the java process of kc.sh.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path


class RigError(Exception):
    """A rig problem explained in one sentence a person can act on."""


@dataclass(frozen=True)
class Service:
    """A process the rig started; its PID is also its process group id."""

    pid: int
    start_time: str | None
    realm_sha256: str = ""

    def alive(self) -> bool:
        """True while this very process runs (a reused PID does not count)."""
        now = start_time(self.pid)
        return now is not None and now in (self.start_time, "?")


@dataclass
class State:
    """The rig's bookkeeping, saved as JSON between commands."""

    services: dict[str, Service] = field(default_factory=dict)
    # PID of the test session using the rig -> its start time.
    leases: dict[str, str | None] = field(default_factory=dict)
    # Test sessions waiting for their turn: the rig stays up for them.
    waiting: dict[str, str | None] = field(default_factory=dict)
    # A person's `rig up` keeps the rig running after the last test session.
    pinned: bool = False

    def live_leases(self) -> dict[str, str | None]:
        """Forget leases of sessions that ended without releasing; return the rest."""
        self.leases = _alive(self.leases)
        return self.leases

    def live_waiting(self) -> dict[str, str | None]:
        """Sessions still waiting for their turn."""
        self.waiting = _alive(self.waiting)
        return self.waiting


def _alive(sessions: dict[str, str | None]) -> dict[str, str | None]:
    return {pid: t for pid, t in sessions.items() if start_time(int(pid)) in (t, "?")}


def start_time(pid: int) -> str | None:
    """Kernel start time of pid, to tell it from a reused PID; None if gone.

    Without /proc (not Linux) a live PID gives "?", trusted as is.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?" if not Path("/proc/self").exists() and _pid_alive(pid) else None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def locked(run_dir: Path, timeout: float) -> Iterator[None]:
    """Serialise rig commands across processes (e.g. concurrent pytest sessions).

    Raises RigError when another command holds the lock longer than ``timeout``.
    """
    with (run_dir / "rig.lock").open("w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RigError(
                        "Another rig command held the rig lock too long; retry."
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load(run_dir: Path) -> State:
    """The saved state; an empty one when missing or unreadable."""
    try:
        raw = json.loads((run_dir / "state.json").read_text())
        return State(
            services={name: Service(**svc) for name, svc in raw["services"].items()},
            leases=dict(raw["leases"]),
            waiting=dict(raw.get("waiting", {})),
            pinned=bool(raw["pinned"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return State()


def save(run_dir: Path, state: State) -> None:
    """Write the state atomically."""
    tmp = run_dir / "state.json.tmp"
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.replace(run_dir / "state.json")


def _group_alive(pgid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-pgid, os.WNOHANG)[0]:  # reap our own children, if any
            pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc/self").exists():
        return True
    # killpg also succeeds for zombies that are not ours to reap: look closer.
    return any(start_time(int(p.name)) for p in Path("/proc").glob("[0-9]*") if _pgid(p) == pgid)


def _pgid(proc: Path) -> int | None:
    try:
        return int(proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def stop(state: State, names: tuple[str, ...]) -> list[str]:
    """Stop the named services' process groups (SIGTERM, then SIGKILL); return those stopped.

    Raises RigError if a group survives SIGKILL.
    """
    stopped = []
    for name in names:
        service = state.services.pop(name, None)
        if service is None or not service.alive():
            continue
        for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, sig)
            deadline = time.monotonic() + grace
            while _group_alive(service.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not _group_alive(service.pid):
                break
        else:
            raise RigError(f"The rig's {name} (process group {service.pid}) survived SIGKILL.")
        stopped.append(name)
    return stopped
