"""The benchmark of issue 6: how fast a sign-in is, and where the time goes.

    .venv/bin/python bench/run.py [--runs N] [--only ITEM ...] [--commit REV] [--markdown]

(--help lists the rest: --budget, --warm-up, --roles, --profiles, --pythonpath for A/B runs of
a patched copy.) Items, run in this order, or only those named with --only:

    cold     1. cold headless sign-in as aws_user (new config dir, so a new browser profile)
    warm     2. warm headless sign-in (--force; the Keycloak session cookie is still alive)
    noop     3. "still valid" no-op run
    cached   4. cached credential_process call
    profile  6. one profile updated in a credentials file of 5,000 profiles
    split    7. the time split of a cold sign-in, step by step
    roles    5. --saml-response-file with 1,000 roles and --all-roles (slowest: last)

Each item runs the tool as a person would (the installed console script, a new process per
run) against the local rig, which is leased like a test session does (keycloak/rig.py: test
sessions wait for the benchmark and the other way round, and it is stopped afterwards if the
benchmark started it). Everything the tool writes goes to one temporary directory (HOME,
ASS_CONFIG_DIR, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), removed at the end; the real
~/.aws is never read or written. Every wait is bounded, and every process a run started
(found by a token in its environment) is killed after the run. Two untimed sign-ins go
first: a Keycloak that has just started answers its first sign-ins twice as slowly.

Peak memory is the tool process's own: VmHWM from /proc/PID/status, sampled every 5 ms while
it runs. VmHWM is the high-water mark of that process's address space alone, so neither the
browser nor chromedriver count. getrusage(RUSAGE_CHILDREN) and wait4() are not used on
purpose: their ru_maxrss takes the maximum over every descendant the child reaped
(chromedriver, and through it Chromium's main process) and, on Linux, also the parent's RSS at
fork time, carried over the exec. VmHWM only grows, so sampling loses at most the growth of
the last 5 ms before exit; the split (item 7) reads VmHWM exactly at its end, as a check.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fixtures

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv's bin: run this file with the venv's python
TOOL = BIN / "awscli_saml_sso"
PROBES = BENCH / "probes.py"

IDP_NICKNAME = "rig"
USERNAME = "aws_user"
ROLE_USER_ARN = "arn:aws:iam::000000000000:role/Role.User"
TOKEN_VARIABLE = "ASS_BENCH_TOKEN"  # noqa: S105 - a variable name, not a secret
ITEM_ORDER = ("cold", "warm", "noop", "cached", "profile", "split", "roles")
ITEM_NUMBERS = {"cold": 1, "warm": 2, "noop": 3, "cached": 4, "roles": 5, "profile": 6, "split": 7}
MB = 1_000_000  # targets are in MB (10^6 bytes); VmHWM is in KiB
MEMORY_TARGET_MB = 150.0
SAMPLE_INTERVAL = 0.005


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
        sampler.start()
        timer.start()
        try:
            returncode = process.wait()
            seconds = time.perf_counter() - started
        finally:
            timer.cancel()
            done.set()
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
        env[TOKEN_VARIABLE] = self.token
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root (CI) the browser runs only without its sandbox, on this explicit opt-in.
            env["ASS_BROWSER_NO_SANDBOX"] = "1"
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath  # a patched copy of the package, for A/B runs
        if password:
            env["ASS_PASSWORD"] = USERNAME  # the rig's passwords equal the usernames
        return env

    @staticmethod
    def credentials(home: Path) -> Path:
        return home / "aws" / "credentials"

    def tool(self, home: Path, args: Sequence[str], *, password: bool, timeout: float) -> Run:
        """Run the tool's console script once with `args` in `home`."""
        return run_process(
            [str(TOOL), *args],
            self.env(home, password=password),
            timeout=timeout,
            token=self.token,
            workdir=home / "work",
        )

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


# -- the items -------------------------------------------------------------------------------


def item_cold(bench: Bench) -> list[Row]:
    row = Row("1 cold headless sign-in (new profile)", 2.5)
    written: list[float] = []

    def once(index: int) -> float:
        home = bench.new_home(f"cold{index}")
        run = bench.tool(home, bench.sign_in_args(), password=True, timeout=180)
        return sign_in_row(bench, row, written, home, run, "cold sign-in")

    bench.repeat(row, once)
    _add_written_note(row, written)
    return [row]


def _signed_in_home(bench: Bench, name: str) -> Path:
    """A home after one cold sign-in: stored IdP, browser profile with a live IdP session."""
    home = bench.new_home(name)
    expect(bench.tool(home, bench.sign_in_args(), password=True, timeout=180), "setup sign-in")
    return home


def item_warm(bench: Bench) -> list[Row]:
    row = Row("2 warm headless sign-in (--force)", 1.2)
    written: list[float] = []
    try:
        home = _signed_in_home(bench, "warm")
    except BenchError as exc:
        row.error = str(exc)
        return [row]

    def once(index: int) -> float:
        # No ASS_PASSWORD and --no-prompt: if Keycloak asked for the password, the run would
        # fail, so a success proves the sign-in was warm.
        run = bench.tool(home, bench.sign_in_args("--force"), password=False, timeout=120)
        return sign_in_row(bench, row, written, home, run, "warm sign-in (without a password)")

    bench.repeat(row, once)
    _add_written_note(row, written)
    return [row]


def item_noop(bench: Bench) -> list[Row]:
    row = Row('3 "still valid" no-op run', 0.25)
    try:
        home = _signed_in_home(bench, "noop")
    except BenchError as exc:
        row.error = str(exc)
        return [row]
    path = bench.credentials(home)
    before = path.stat().st_mtime_ns

    def once(index: int) -> float:
        run = expect(bench.tool(home, bench.sign_in_args(), password=False, timeout=60), "no-op")
        if path.stat().st_mtime_ns != before:
            raise BenchError("the no-op run rewrote the credentials file")
        if run.peak_kib:
            row.peaks_kib.append(run.peak_kib)
        return run.seconds

    bench.repeat(row, once)
    return [row]


def item_cached(bench: Bench) -> list[Row]:
    row = Row("4 cached credential_process call", 0.1)
    args = [
        "credential-process",
        "--idp-nickname",
        IDP_NICKNAME,
        "--role-arn",
        ROLE_USER_ARN,
        "--endpoint-url",
        bench.endpoint_url,
    ]
    try:
        home = _signed_in_home(bench, "cached")
        # The first call signs in (warm) and fills the cache; it is not timed.
        expect(bench.tool(home, args, password=True, timeout=180), "first credential-process")
    except BenchError as exc:
        row.error = str(exc)
        return [row]
    cache_files = sorted((home / "ass" / "cache").glob("*.json"))
    if len(cache_files) != 1:
        row.error = f"expected one cache file, found {len(cache_files)}"
        return [row]
    cached = cache_files[0].read_bytes()

    def once(index: int) -> float:
        run = expect(bench.tool(home, args, password=False, timeout=60), "credential-process")
        document = json.loads(run.stdout)
        if document.get("Version") != 1 or not document.get("AccessKeyId"):
            raise BenchError("credential-process printed no credential_process JSON")
        if cache_files[0].read_bytes() != cached:
            raise BenchError("the cached call refreshed the cache")
        if run.peak_kib:
            row.peaks_kib.append(run.peak_kib)
        return run.seconds

    bench.repeat(row, once)
    return [row]


def item_roles(bench: Bench, roles: int) -> list[Row]:
    row = Row(f"5 --all-roles, {roles:,} roles (--saml-response-file)", 1.5)
    floors = {
        "raw_serial": Row(f"5' emulator floor: {roles:,} raw POSTs, serial", None),
        "raw_threaded": Row(f"5' emulator floor: {roles:,} raw POSTs, 8 threads", None),
        "botocore_serial": Row(f"5' {roles:,} calls, 1 reused botocore client, serial", None),
    }
    assertion = bench.root / f"saml-{roles}-roles.txt"
    assertion.write_text(fixtures.saml_response(roles))

    def once(index: int) -> float:
        home = bench.new_home(f"roles{index}")
        args = [
            "--saml-response-file",
            str(assertion),
            "--all-roles",
            "--endpoint-url",
            bench.endpoint_url,
            "--no-prompt",
        ]
        run = expect(bench.tool(home, args, password=False, timeout=1800), "--all-roles")
        text = bench.credentials(home).read_text()
        count = len(re.findall(r"^\[Bench\d{4}\]", text, re.MULTILINE))
        if count != roles:
            raise BenchError(f"--all-roles wrote {count} profiles, not {roles}")
        if run.peak_kib:
            row.peaks_kib.append(run.peak_kib)
        return run.seconds

    bench.repeat(row, once)
    home = bench.new_home("sts-floor")
    try:
        result = probe_result(
            bench.probe(
                home,
                [
                    "sts-floor",
                    "--assertion-file",
                    str(assertion),
                    "--endpoint-url",
                    bench.endpoint_url,
                    "--calls",
                    str(roles),
                    "--threads",
                    "8",
                ],
                timeout=1800,
            )
        )
        for key, floor in floors.items():
            floor.samples.append(result[key])
        floors["raw_serial"].note = (
            f"assertion {result['assertion_chars'] / 1000:.0f} k base64 chars, URL-encoded "
            "once: what remains is the emulator's own time"
        )
    except BenchError as exc:
        floors["raw_serial"].error = str(exc)
    return [row, *floors.values()]


def item_profile(bench: Bench, profiles: int) -> list[Row]:
    middle = fixtures.profile_name(profiles // 2)
    function = Row(f"6a write_credentials(), 1 profile of {profiles:,} (in-process)", 0.3)
    cli = Row(f"6b whole CLI, 1 role into 1 profile of {profiles:,} (STS on moto)", 0.3)
    noop = Row(f"6c still-valid no-op, 1 profile of {profiles:,}", 0.25)
    base = bench.root / f"credentials-{profiles}"
    size = fixtures.write_credentials_file(base, profiles)
    function.note = f"file {size / MB:.1f} MB"
    home = bench.new_home("write")
    try:
        result = probe_result(
            bench.probe(
                home,
                [
                    "write",
                    "--file",
                    str(base),
                    "--work",
                    str(home / "work"),
                    "--profile",
                    middle,
                    "--runs",
                    str(bench.runs),
                ],
                timeout=600,
            )
        )
        function.samples = result["timings"]
    except BenchError as exc:
        function.error = str(exc)
    one_role = bench.root / "saml-1-role.txt"
    one_role.write_text(fixtures.saml_response(1))

    def once_cli(index: int) -> float:
        home = bench.new_home(f"profile{index}")
        shutil.copyfile(base, bench.credentials(home))
        args = [
            "--saml-response-file",
            str(one_role),
            "--profile",
            middle,
            "--endpoint-url",
            bench.endpoint_url,
            "--no-prompt",
        ]
        run = expect(bench.tool(home, args, password=False, timeout=120), "one-profile update")
        if read_profile(bench.credentials(home), middle).get("x_role_arn") != fixtures.role_arn(0):
            raise BenchError(f"[{middle}] was not updated")
        if run.peak_kib:
            cli.peaks_kib.append(run.peak_kib)
        return run.seconds

    bench.repeat(cli, once_cli)
    home = bench.new_home("profile-noop")
    shutil.copyfile(base, bench.credentials(home))

    def once_noop(index: int) -> float:
        # Profiles of the big file expire in 2030: the run must stop at the still-valid check.
        run = bench.tool(home, ["--profile", middle, "--no-prompt"], password=False, timeout=60)
        expect(run, "still-valid no-op on the big file")
        if run.peak_kib:
            noop.peaks_kib.append(run.peak_kib)
        return run.seconds

    bench.repeat(noop, once_noop)
    return [function, cli, noop]


@dataclass
class Split:
    """The steps of the cold sign-in over several runs (item 7)."""

    steps: dict[str, list[float]] = field(default_factory=dict)
    calls: dict[str, list[float]] = field(default_factory=dict)
    totals: list[float] = field(default_factory=list)
    peaks_kib: list[int] = field(default_factory=list)
    error: str = ""
    note: str = ""


def item_split(bench: Bench) -> Split:
    """Cold sign-ins through the installed tool, split by the spans it records (ASS_TIMINGS)."""
    split = Split()

    def once(index: int) -> None:
        home = bench.new_home(f"split{index}")
        spans_file = home / "work" / "spans.jsonl"
        args = bench.sign_in_args()
        run = run_process(
            [str(TOOL), *args],
            {**bench.env(home, password=True), "ASS_TIMINGS": str(spans_file)},
            timeout=180,
            token=bench.token,
            workdir=home / "work",
        )
        expect(run, "split sign-in")
        records = [json.loads(line) for line in spans_file.read_text().splitlines() if line]
        spans = [span for record in records for span in record["spans"]]
        if not any(name == "idp pages" for name, _start, _end in spans):
            raise BenchError("the split's sign-in recorded no browser spans")
        covered = 0.0
        for name, start, end in spans:
            split.steps.setdefault(name, []).append(end - start)
            covered += end - start
        split.steps.setdefault("rest: interpreter, imports, exit, overlap", []).append(
            run.seconds - covered
        )
        split.totals.append(run.seconds)
        if run.peak_kib:
            split.peaks_kib.append(run.peak_kib)

    row = Row("7 split", None)
    bench.repeat(row, lambda index: once(index))
    split.error, split.note = row.error, row.note
    return split


# -- output ----------------------------------------------------------------------------------


def _s(seconds: float) -> str:
    return f"{seconds:7.3f}"


def _mb(kib: float) -> str:
    return f"{kib * 1024 / MB:.0f}"


def print_rows(rows: Sequence[Row]) -> None:
    print()
    header = (
        f"{'item':58} {'n':>2} {'median':>7} {'min':>7} {'max':>7} {'target':>8} "
        f"{'verdict':7} peak MB (med/max)"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        target = f"< {row.target:g} s" if row.target is not None else ""
        if row.samples:
            timing = f"{_s(statistics.median(row.samples))} {_s(min(row.samples))} "
            timing += _s(max(row.samples))
        else:
            timing = f"{'-':>7} {'-':>7} {'-':>7}"
        peak = ""
        if row.peaks_kib:
            peak = f"{_mb(statistics.median(row.peaks_kib))}/{_mb(max(row.peaks_kib))}"
        print(f"{row.label:58} {len(row.samples):>2} {timing} {target:>8} {row.verdict():7} {peak}")
        if row.error:
            print(f"{'':61}error: {row.error}")
        if row.note:
            print(f"{'':61}{row.note}")
        if len(row.samples) > 1:
            print(f"{'':61}runs: " + " ".join(f"{s:.3f}" for s in row.samples))
    peaks = [(max(row.peaks_kib), row.label) for row in rows if row.peaks_kib]
    if peaks:
        kib, label = max(peaks)
        verdict = "PASS" if kib * 1024 / MB < MEMORY_TARGET_MB else "MISS"
        count = sum(len(row.peaks_kib) for row in rows)
        print(
            f"\ntool's own peak memory (VmHWM): max {_mb(kib)} MB over {count} runs "
            f"(in '{label.strip()}'); target < {MEMORY_TARGET_MB:g} MB: {verdict}"
        )


def print_markdown(rows: Sequence[Row]) -> None:
    """The summary as a Markdown table, for the README."""
    print("\n| item | runs | median | min | max | target | verdict | peak MB |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for row in rows:
        if row.samples:
            cells = [f"{f(row.samples):.3f} s" for f in (statistics.median, min, max)]
        else:
            cells = ["-", "-", "-"]
        target = f"< {row.target:g} s" if row.target is not None else ""
        peak = _mb(max(row.peaks_kib)) if row.peaks_kib else ""
        print(
            f"| {row.label} | {len(row.samples)} | {' | '.join(cells)} | {target} | "
            f"{row.verdict()} | {peak} |"
        )


def print_split(split: Split, cold_median: float | None) -> None:
    print("\n7 time split of a cold sign-in: the spans the installed tool records (ASS_TIMINGS)")
    print("  around its own steps; proxy and browser start overlap, the rest is what no span")
    print("  covers (interpreter start, imports, exit)")
    if split.error:
        print(f"  error: {split.error}")
    if split.note:
        print(f"  {split.note}")
    if not split.totals:
        return
    total = statistics.median(split.totals)
    print(f"\n  {'step':64} {'median':>7} {'min':>7} {'max':>7} {'share':>6}")
    for label, values in split.steps.items():
        median = statistics.median(values)
        print(
            f"  {label:64} {_s(median)} {_s(min(values))} {_s(max(values))} {median / total:6.1%}"
        )
    print(
        f"  {'process total (fork to exit)':64} {_s(total)} {_s(min(split.totals))} "
        f"{_s(max(split.totals))}"
    )
    if split.calls:
        print("\n  inside the steps above:")
        for label, values in split.calls.items():
            median = statistics.median(values)
            print(f"  {label:64} {_s(median)} {_s(min(values))} {_s(max(values))}")
    if split.peaks_kib:
        print(f"\n  peak memory of the tool's process: {_mb(max(split.peaks_kib))} MB (max)")
    if cold_median is not None:
        print(f"  (item 1, the same sign-in through the CLI: median {cold_median:.3f} s)")


def _version(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"


def _package(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def extract_commit(rev: str, destination: Path) -> Path:
    """Write awscli_saml_sso/ as committed at `rev` under destination; BenchError if git fails."""
    import io
    import tarfile

    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", rev, "awscli_saml_sso"],
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"cannot take awscli_saml_sso/ at {rev} from git: {exc}") from exc
    destination.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    (destination / "COMMIT").write_text(rev)
    return destination


def _tool_location(pythonpath: str | None) -> str:
    env = dict(os.environ, PYTHONPATH=pythonpath) if pythonpath else None
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import awscli_saml_sso as p; print(p.__file__)"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            stdin=subprocess.DEVNULL,
            cwd="/",  # as the tool runs: the repository's checkout must not shadow PYTHONPATH
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    if done.returncode != 0:
        return "not importable"
    package = Path(done.stdout.strip()).parent
    commit_file = package.parent / "COMMIT"
    if commit_file.exists():
        rev = commit_file.read_text()
        full = _version(["git", "-C", str(REPO), "rev-parse", "--short", rev])
        return f"awscli_saml_sso/ as committed at {rev} ({full})"
    return str(package)


def machine_facts(pythonpath: str | None) -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    commit = _version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    changes = _version(["git", "-C", str(REPO), "status", "--porcelain", "--", "awscli_saml_sso"])
    dirty = changes != "unknown"  # _version gives "unknown" for empty output: a clean tree
    one, five, fifteen = os.getloadavg()
    packages = ", ".join(
        f"{name} {_package(name)}" for name in ("selenium", "mitmproxy", "boto3", "moto", "click")
    )
    return [
        f"date        {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
        f"machine     {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {cpu}, "
        f"{memory} RAM, {platform.system()} {platform.release()}",
        f"load        {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) at the start",
        f"python      {platform.python_version()} ({sys.executable})",
        f"browser     {_version(['chromium', '--version'])}; "
        f"{_version(['chromedriver', '--version']).split(' (')[0]}",
        f"packages    {packages}",
        f"tool        awscli_saml_sso {_package('awscli_saml_sso')}, repo at {commit}"
        + (" (awscli_saml_sso/ has uncommitted changes)" if dirty else "")
        + f"; code run: {_tool_location(pythonpath)}",
    ]


# -- the run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def rig_lease(queue_timeout: float) -> Iterator[Any]:
    """Lease the rig as a test session does: wait for our turn; stop it after if we started it."""
    rig = importlib.import_module("rig")  # keycloak/rig.py, standard library only

    def say(message: str) -> None:
        print(f"rig: {message}", file=sys.stderr, flush=True)

    result = rig.up(lease=os.getpid(), log=say, queue_timeout=queue_timeout)
    try:
        yield result.info
    finally:
        stopped = rig.release(os.getpid())
        if stopped:
            say(f"stopped {', '.join(stopped)}: no test session uses it and no one pinned it")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so every finally below runs: processes, lease, temp dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description="Benchmark of issue 6 against the local rig."
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per item (default 5)")
    parser.add_argument("--only", nargs="+", choices=ITEM_ORDER, metavar="ITEM", help="items")
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="seconds per item after which it stops repeating (default 300)",
    )
    parser.add_argument("--roles", type=int, default=1000, help="roles of item 5")
    parser.add_argument("--profiles", type=int, default=5000, help="profiles of item 6")
    parser.add_argument(
        "--queue-timeout", type=float, default=1800.0, help="seconds to wait for test sessions"
    )
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=2,
        metavar="N",
        help="untimed sign-ins first, so a freshly started Keycloak has warmed up (default 2)",
    )
    code = parser.add_mutually_exclusive_group()
    code.add_argument(
        "--commit",
        metavar="REV",
        help="run the tool's code as committed at REV (git archive), not the working tree",
    )
    code.add_argument(
        "--pythonpath",
        metavar="DIR",
        help="run the tool from a patched copy of awscli_saml_sso in DIR (PYTHONPATH), for A/B",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not TOOL.exists():
        parser.error(f"{TOOL} is missing: run this file with the venv's python")
    sys.path.insert(0, str(REPO / "keycloak"))
    signal.signal(signal.SIGTERM, _terminate)
    selected = [name for name in ITEM_ORDER if not args.only or name in args.only]

    token = uuid.uuid4().hex
    root = Path(tempfile.mkdtemp(prefix="ass-bench-"))
    rows: list[Row] = []
    split: Split | None = None
    began = time.monotonic()
    try:
        pythonpath = args.pythonpath
        if args.commit:
            pythonpath = str(extract_commit(args.commit, root / "code"))
        print("awscli_saml_sso benchmark (issue 6): " + " ".join(sys.argv[1:]))
        for line in machine_facts(pythonpath):
            print("  " + line)
        sys.stdout.flush()
        with rig_lease(args.queue_timeout) as info:
            bench = Bench(
                root=root,
                token=token,
                idp_url=info.idp_login_url,
                endpoint_url=info.endpoint_url,
                runs=args.runs,
                budget=args.budget,
                pythonpath=pythonpath,
            )
            signs_in = {"cold", "warm", "noop", "cached", "split"}.intersection(selected)
            for index in range(args.warm_up if signs_in else 0):
                # Keycloak compiles its code paths on the first sign-ins after a start: the
                # first few can take twice as long. They are not what is measured.
                print(f"... warm-up sign-in {index + 1}", file=sys.stderr, flush=True)
                home = bench.new_home(f"warm-up{index}")
                expect(
                    bench.tool(home, bench.sign_in_args(), password=True, timeout=180),
                    "warm-up sign-in",
                )
            items: dict[str, Callable[[], Any]] = {
                "cold": lambda: item_cold(bench),
                "warm": lambda: item_warm(bench),
                "noop": lambda: item_noop(bench),
                "cached": lambda: item_cached(bench),
                "profile": lambda: item_profile(bench, args.profiles),
                "split": lambda: item_split(bench),
                "roles": lambda: item_roles(bench, args.roles),
            }
            for name in selected:
                print(f"... {name}", file=sys.stderr, flush=True)
                try:
                    outcome = items[name]()
                except (BenchError, OSError, ValueError, KeyError, RuntimeError) as exc:
                    # A broken item must not cost the others' numbers.
                    number = ITEM_NUMBERS[name]
                    rows.append(Row(f"{number} {name}", None, error=f"crashed: {exc!r}"))
                    continue
                if isinstance(outcome, Split):
                    split = outcome
                    continue
                rows.extend(outcome)
                for row in outcome:
                    median = f"{statistics.median(row.samples):.3f} s" if row.samples else "-"
                    print(f"    {row.label}: {median} {row.error}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"bench/run.py: {exc}", file=sys.stderr)
        return 1
    finally:
        kill_tagged(token)
        shutil.rmtree(root, ignore_errors=True)
    order = "1234567"
    rows.sort(key=lambda row: (order.index(row.label[0]), row.label))
    print_rows(rows)
    if args.markdown:
        print_markdown(rows)
    if split is not None:
        cold = next((r for r in rows if r.label.startswith("1 ") and r.samples), None)
        print_split(split, statistics.median(cold.samples) if cold else None)
    one, five, _ = os.getloadavg()
    print(
        f"\nload at the end: {one:.2f} {five:.2f} (1/5 min); "
        f"benchmark took {time.monotonic() - began:.0f} s"
    )
    return 1 if any(row.error for row in rows) or (split and split.error) else 0


if __name__ == "__main__":
    sys.exit(main())
