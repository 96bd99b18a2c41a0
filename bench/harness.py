"""The benchmark's harness: running the installed tool as a person would, timing it, sampling
its memory (the tool's own VmHWM and the whole process tree's RSS), and the rows the report
prints. See run.py for what is measured and how.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peer import TreeMemory

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv's bin: run this file with the venv's python
TOOL = BIN / "awscli_saml_sso"
PROBES = BENCH / "probes.py"

IDP_NICKNAME = "rig"
USERNAME = "aws_user"
ROLE_USER_ARN = "arn:aws:iam::000000000000:role/Role.User"
TOKEN_VARIABLE = "ASS_BENCH_TOKEN"  # noqa: S105 - a variable name, not a secret
ITEM_ORDER = ("cold", "warm", "noop", "cached", "profile", "split", "beside", "roles")
ITEM_NUMBERS = {
    "cold": 1,
    "warm": 2,
    "noop": 3,
    "cached": 4,
    "roles": 5,
    "profile": 6,
    "split": 7,
    "beside": 8,
}
MB = 1_000_000  # targets are in MB (10^6 bytes); VmHWM is in KiB
MEMORY_TARGET_MB = 150.0
SAMPLE_INTERVAL = 0.005
TREE_INTERVAL = 0.02  # a walk of /proc costs more than one status read

# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run of a process: wall time from just before fork to its exit, and its peak RSS."""

    seconds: float
    peak_kib: int | None
    returncode: int | None  # None: killed at its time limit
    stdout: str
    stderr: str
    started_wall: float  # time.time() just before the fork, to place file mtimes
    tree_peak_bytes: int = 0  # highest summed RSS of the process and its descendants
    tree_processes: int = 0  # how many processes that tree had at that moment


@dataclass
class Row:
    """One line of the summary table."""

    label: str
    target: float | None  # seconds; None: no target, shown for information
    samples: list[float] = field(default_factory=list)
    peaks_kib: list[int] = field(default_factory=list)
    note: str = ""
    error: str = ""

    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.target is None or not self.samples:
            return "-"
        return "PASS" if statistics.median(self.samples) < self.target else "MISS"


class BenchError(Exception):
    """A run failed or did not do what the item needs; the item is reported as ERROR."""


# -- processes -------------------------------------------------------------------------------


def _vm_hwm(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None  # a zombie has no VmHWM line


def kill_tagged(token: str) -> list[int]:
    """SIGKILL every process whose environment carries our token (what our runs started).

    The token is passed to the tool only, never set in this process's environment, and
    Chromium and chromedriver inherit it; matching on it kills nothing we did not start.
    """
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


def run_process(
    argv: Sequence[str], env: dict[str, str], *, timeout: float, token: str, workdir: Path
) -> Run:
    """Run argv to completion (killed after `timeout` s); time it and sample its VmHWM.

    The main thread blocks in waitpid, so the end time is the exit, not the next poll;
    a timer kills the process group at the time limit; a thread samples VmHWM.
    """
    out_path, err_path = workdir / "stdout.txt", workdir / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started_wall = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own group: the watchdog kills it and its helpers
            cwd=workdir,
        )
        # Popen returns after the exec, so every sample below is of the tool's own image.
        peaks: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                value = _vm_hwm(process.pid)
                if value is not None:
                    peaks.append(value)
                done.wait(SAMPLE_INTERVAL)

        def watchdog() -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

        sampler = threading.Thread(target=sample, name="vmhwm-sampler", daemon=True)
        timer = threading.Timer(timeout, watchdog)
        timer.daemon = True
        tree = TreeMemory(process.pid, TREE_INTERVAL)
        sampler.start()
        tree.start()
        timer.start()
        try:
            returncode = process.wait()
            seconds = time.perf_counter() - started
        finally:
            timer.cancel()
            done.set()
            tree.stop()
            sampler.join(1.0)
            if process.poll() is None:  # interrupted: never leave it behind
                watchdog()
                process.wait(10)
            kill_tagged(token)
    timed_out = returncode == -signal.SIGKILL and seconds >= timeout
    return Run(
        seconds=seconds,
        peak_kib=max(peaks) if peaks else None,
        returncode=None if timed_out else returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        started_wall=started_wall,
        tree_peak_bytes=tree.peak_bytes,
        tree_processes=tree.processes,
    )


def probe_result(run: Run) -> dict[str, Any]:
    """The JSON a bench/probes.py child printed; BenchError when it failed."""
    if run.returncode != 0:
        raise BenchError(f"probe failed ({_why(run)})")
    for line in run.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH-RESULT "))
            return result
    raise BenchError("probe printed no result")


def _why(run: Run) -> str:
    if run.returncode is None:
        return f"killed at its time limit after {run.seconds:.0f} s"
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    return f"exit {run.returncode}: {lines[-1] if lines else 'no message'}"


# -- the context every item shares -----------------------------------------------------------


@dataclass
class Bench:
    """Paths, rig coordinates and options shared by the items."""

    root: Path
    token: str
    idp_url: str
    endpoint_url: str
    runs: int
    budget: float
    pythonpath: str | None = None
    homes: int = 0

    def new_home(self, name: str) -> Path:
        """A fresh directory standing for one person's home, config dir and AWS files."""
        self.homes += 1
        home = self.root / f"{self.homes:03d}-{name}"
        for sub in ("home", "ass", "aws", "work"):
            (home / sub).mkdir(parents=True, mode=0o700)
        return home

    def env(self, home: Path, *, password: bool) -> dict[str, str]:
        """The tool's environment: isolated paths, our token, no AWS or ASS settings inherited."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "ASS_", "XDG_", "PYTHON", "BOTO"))
        }
        env.update(
            HOME=str(home / "home"),
            XDG_CONFIG_HOME=str(home / "home" / ".config"),
            XDG_CACHE_HOME=str(home / "home" / ".cache"),
            XDG_DATA_HOME=str(home / "home" / ".local" / "share"),
            ASS_CONFIG_DIR=str(home / "ass"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.credentials(home)),
            AWS_CONFIG_FILE=str(home / "aws" / "config"),
            # Never a real keyring: a password the tool wants must come from ASS_PASSWORD.
            PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        )
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root (CI) the browser runs only without its sandbox, on this explicit opt-in.
            env["ASS_BROWSER_NO_SANDBOX"] = "1"
        env[TOKEN_VARIABLE] = self.token
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath  # a patched copy of the package, for A/B runs
        if password:
            env["ASS_PASSWORD"] = USERNAME  # the rig's passwords equal the usernames
        return env

    @staticmethod
    def credentials(home: Path) -> Path:
        return home / "aws" / "credentials"

    def tool(
        self,
        home: Path,
        args: Sequence[str],
        *,
        password: bool,
        timeout: float,
        extra_env: dict[str, str] | None = None,
        program: Sequence[str] | None = None,
    ) -> Run:
        """Run the tool (`self.program`, or another `program`) once with `args` in `home`."""
        return run_process(
            [*(program or self.program), *args],
            {**self.env(home, password=password), **(extra_env or {})},
            timeout=timeout,
            token=self.token,
            workdir=home / "work",
        )

    @property
    def program(self) -> tuple[str, ...]:
        """The installed console script, as a person runs it; for a copy of the package on
        PYTHONPATH (--commit, --pythonpath), `python -m awscli_saml_sso`, which every version
        has, whatever module the script's entry point names today."""
        if self.pythonpath:
            return (sys.executable, "-m", "awscli_saml_sso")
        return (str(TOOL),)

    def probe(self, home: Path, args: Sequence[str], *, timeout: float) -> Run:
        return run_process(
            [sys.executable, str(PROBES), *args],
            self.env(home, password=True),
            timeout=timeout,
            token=self.token,
            workdir=home / "work",
        )

    def sign_in_args(self, *extra: str) -> list[str]:
        return [
            "--idp-nickname",
            IDP_NICKNAME,
            "--idp-url",
            self.idp_url,
            "--username",
            USERNAME,
            "--endpoint-url",
            self.endpoint_url,
            "--no-prompt",
            *extra,
        ]

    def repeat(self, row: Row, once: Callable[[int], float | None]) -> None:
        """Call once(i) up to `runs` times, within the item's time budget; errors end the row.

        once returns the seconds to record (None: recorded by once itself).
        """
        began = time.monotonic()
        for index in range(self.runs):
            try:
                seconds = once(index)
            except BenchError as exc:
                row.error = str(exc)
                return
            if seconds is not None:
                row.samples.append(seconds)
            spent = time.monotonic() - began
            left = self.runs - index - 1
            if left and spent / (index + 1) * (index + 2) > self.budget:
                row.note = f"{index + 1} of {self.runs} runs: --budget {self.budget:.0f} s"
                return


def expect(run: Run, what: str) -> Run:
    """The run if it exited 0; BenchError naming `what` otherwise."""
    if run.returncode != 0:
        raise BenchError(f"{what} failed ({_why(run)})")
    return run


def read_profile(path: Path, name: str) -> dict[str, str]:
    """A profile's keys, read the way the AWS CLI does (configparser), for checks only."""
    import configparser

    parser = configparser.RawConfigParser()
    parser.read(path, encoding="utf-8")
    return dict(parser[name]) if parser.has_section(name) else {}


def written_after(run: Run, path: Path) -> float | None:
    """Seconds from the run's start to the last write of `path` (its mtime)."""
    try:
        return path.stat().st_mtime - run.started_wall
    except OSError:
        return None


def sign_in_row(
    bench: Bench, row: Row, written: list[float], home: Path, run: Run, what: str
) -> float:
    expect(run, what)
    profile = read_profile(bench.credentials(home), "saml")
    if profile.get("x_role_arn") != ROLE_USER_ARN:
        raise BenchError(f"{what} wrote no [saml] profile for {ROLE_USER_ARN}")
    if run.peak_kib:
        row.peaks_kib.append(run.peak_kib)
    at = written_after(run, bench.credentials(home))
    if at is not None:
        written.append(at)
    return run.seconds


def _add_written_note(row: Row, written: list[float]) -> None:
    if written:
        note = f"credentials file written at {statistics.median(written):.2f} s (median)"
        row.note = f"{row.note}; {note}" if row.note else note
