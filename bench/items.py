"""The benchmark's items: each runs the tool in fresh homes against the rig and returns rows."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import fixtures
from harness import (
    IDP_NICKNAME,
    MB,
    ROLE_USER_ARN,
    Bench,
    BenchError,
    Row,
    _add_written_note,
    expect,
    probe_result,
    read_profile,
    run_process,
    sign_in_row,
)

# -- the items -------------------------------------------------------------------------------


def item_cold(bench: Bench) -> list[Row]:
    row = Row("1 cold headless sign-in (new profile)", 1.3)  # issue 14 (issue 6: 2.5)
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
    row = Row('3 "still valid" no-op run', 0.03)  # issue 14 (issue 6: 0.25)
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
    row = Row("4 cached credential_process call", 0.04)  # issue 14 (issue 6: 0.1)
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
            [*bench.program, *args],
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
