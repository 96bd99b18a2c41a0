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
    beside   8-10. beside saml2aws (bench/side_by_side.py): warm sign-in and no-op, A and B
             alternating, whole process tree memory; --all-roles against a 50 ms STS
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
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import side_by_side
from harness import (
    ITEM_NUMBERS,
    ITEM_ORDER,
    REPO,
    TOOL,
    Bench,
    BenchError,
    Row,
    expect,
    kill_tagged,
)
from items import (
    Split,
    item_cached,
    item_cold,
    item_noop,
    item_profile,
    item_roles,
    item_split,
    item_warm,
)
from report import extract_commit, machine_facts, print_markdown, print_rows, print_split

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
    beside: side_by_side.SideBySide | None = None
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
            signs_in = {"cold", "warm", "noop", "cached", "split", "beside"}.intersection(selected)
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
                "beside": lambda: side_by_side.item_beside(bench, args.roles),
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
                if isinstance(outcome, side_by_side.SideBySide):
                    beside = outcome
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
    order = "12345678"
    rows.sort(key=lambda row: (order.index(row.label[0]), row.label))
    print_rows(rows)
    if args.markdown:
        print_markdown(rows)
    if split is not None:
        cold = next((r for r in rows if r.label.startswith("1 ") and r.samples), None)
        print_split(split, statistics.median(cold.samples) if cold else None)
    if beside is not None:
        side_by_side.print_side_by_side(beside, args.markdown)
    one, five, _ = os.getloadavg()
    print(
        f"\nload at the end: {one:.2f} {five:.2f} (1/5 min); "
        f"benchmark took {time.monotonic() - began:.0f} s"
    )
    failed = any(row.error for row in rows) or bool(split and split.error)
    failed = failed or (beside is not None and any(pair.error for pair in beside.pairs))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
