"""The benchmark's report: the summary table (text and Markdown), the time split, and the
provenance lines (date, machine, versions, which code ran).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from harness import MB, MEMORY_TARGET_MB, REPO, BenchError, Row
from items import Split

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
