"""Child processes of the benchmark: each measures inside a fresh interpreter and prints JSON.

    python bench/probes.py write ...              write_credentials() into a big file (item 6a)
    python bench/probes.py sts-floor ...          the emulator's own speed (for item 5)

Run by bench/run.py, which sets HOME, ASS_CONFIG_DIR and the AWS file variables to a
temporary directory. Each prints one line ``BENCH-RESULT {json}`` on stdout at the end.
The split of a sign-in (item 7) is not measured here: the installed tool records its own
timing spans (ASS_TIMINGS), so the benchmark never re-implements the flow.
"""

from __future__ import annotations

import time

# Taken before any other import: the parent's start time minus this is interpreter start-up.
_T0 = time.monotonic()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

RESULT_PREFIX = "BENCH-RESULT "


def vm_hwm_kib() -> int | None:
    """This process's peak resident set (VmHWM, KiB): its own pages only, not its children's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# -- write_credentials() into a big file -------------------------------------------------------


def write(args: argparse.Namespace) -> dict[str, Any]:
    """Time write_credentials() updating one profile of a big file, on a fresh copy each run."""
    from awscli_saml_sso.aws.config_files import read_profile, write_credentials
    from awscli_saml_sso.model import Keys

    base = Path(args.file)
    target = Path(args.work) / "credentials"
    keys = Keys(
        access_key_id="ASIABENCHBENCHBENCH1",
        secret_access_key="s" * 40,
        session_token="t" * 700,
        expiration=datetime.now(timezone.utc) + timedelta(hours=1),
        role_arn="arn:aws:iam::000000000000:role/Bench0001",
        principal_arn="arn:aws:iam::000000000000:saml-provider/SamlExampleProvider",
    )
    timings: list[float] = []
    read_timings: list[float] = []
    for _ in range(args.runs):
        shutil.copyfile(base, target)
        target.chmod(0o600)
        started = time.perf_counter()
        write_credentials(target, {args.profile: keys})
        timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        profile = read_profile(target, args.profile)
        read_timings.append(time.perf_counter() - started)
        if not profile or profile.get("aws_access_key_id") != keys.access_key_id:
            raise RuntimeError(f"[{args.profile}] did not read back as written")
    return {"timings": timings, "read_timings": read_timings, "vm_hwm_kib": vm_hwm_kib()}


# -- the emulator's own speed for AssumeRoleWithSAML ---------------------------------------------


def sts_floor(args: argparse.Namespace) -> dict[str, Any]:
    """Time N AssumeRoleWithSAML calls as cheaply as a client can make them, and with botocore.

    "raw": one HTTP POST per call with the body URL-encoded once (the emulator's own cost),
    serially and from 8 threads; "botocore": one reused unsigned client, serially (botocore
    URL-encodes the whole assertion again on every call). This is the least any client can
    spend on `calls` calls against this emulator: it tells whether the target is reachable.
    """
    import http.client
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import quote_plus, urlsplit

    import boto3.session
    from botocore import UNSIGNED
    from botocore.config import Config

    assertion = Path(args.assertion_file).read_text().strip()
    provider = "arn:aws:iam::000000000000:saml-provider/SamlExampleProvider"
    quoted_assertion = quote_plus(assertion)
    endpoint = urlsplit(args.endpoint_url)

    def raw(index: int) -> None:
        body = (
            "Action=AssumeRoleWithSAML&Version=2011-06-15&DurationSeconds=3600"
            f"&RoleArn={quote_plus(f'arn:aws:iam::000000000000:role/Bench{index:04d}')}"
            f"&PrincipalArn={quote_plus(provider)}&SAMLAssertion={quoted_assertion}"
        )
        connection = http.client.HTTPConnection(
            endpoint.hostname or "localhost", endpoint.port or 80, timeout=60
        )
        try:
            connection.request(
                "POST", "/", body, {"Content-Type": "application/x-www-form-urlencoded"}
            )
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"the emulator answered {response.status}")
        finally:
            connection.close()

    client = boto3.session.Session().client(
        "sts",
        region_name="us-east-1",
        endpoint_url=args.endpoint_url,
        config=Config(signature_version=UNSIGNED),
        aws_access_key_id="unused",
        aws_secret_access_key="unused",  # noqa: S106 - unsigned calls; keeps botocore off files
    )

    def botocore_call(index: int) -> None:
        client.assume_role_with_saml(
            RoleArn=f"arn:aws:iam::000000000000:role/Bench{index:04d}",
            PrincipalArn=provider,
            SAMLAssertion=assertion,
            DurationSeconds=3600,
        )

    def timed(run: Callable[[], object]) -> float:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    raw(0)
    botocore_call(0)  # connection set-up and model loading are not what is measured
    calls = range(args.calls)
    result: dict[str, Any] = {"calls": args.calls, "assertion_chars": len(assertion)}

    def serially(call: Callable[[int], None]) -> Callable[[], None]:
        def run() -> None:
            for index in calls:
                call(index)

        return run

    result["raw_serial"] = timed(serially(raw))
    with ThreadPoolExecutor(args.threads) as pool:
        result["raw_threaded"] = timed(lambda: list(pool.map(raw, calls)))
    result["botocore_serial"] = timed(serially(botocore_call))
    result["threads"] = args.threads
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/probes.py")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("write")
    p.add_argument("--file", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--profile", required=True)
    p.add_argument("--runs", type=int, default=5)
    p = sub.add_parser("sts-floor")
    p.add_argument("--assertion-file", required=True)
    p.add_argument("--endpoint-url", required=True)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    handlers: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "write": write,
        "sts-floor": sts_floor,
    }
    emit(handlers[args.command](args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
