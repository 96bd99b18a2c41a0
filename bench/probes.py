"""Child processes of the benchmark: each measures inside a fresh interpreter and prints JSON.

    python bench/probes.py split --start T ...   the cold sign-in, step by step (item 7)
    python bench/probes.py write ...              write_credentials() into a big file (item 6a)
    python bench/probes.py sts-floor ...          the emulator's own speed (for item 5)

Run by bench/run.py, which sets HOME, ASS_CONFIG_DIR and the AWS file variables to a
temporary directory. Each prints one line ``BENCH-RESULT {json}`` on stdout at the end.
The tool's code is not modified: the split calls the same functions, in the same order, as
``awscli_saml_sso.signin.browser_sign_in`` and ``login.login``, with timers around each call,
and wraps a few library methods on this process's objects to split the longer steps.
"""

from __future__ import annotations

import time

# Taken before any other import: the parent's start time minus this is interpreter start-up.
_T0 = time.monotonic()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
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


# -- the split of a cold sign-in -------------------------------------------------------------


@dataclass
class Marks:
    """Named durations, in the order they happened; wrapped calls add up per label."""

    steps: list[tuple[str, float]] = field(default_factory=list)
    calls: dict[str, list[float]] = field(default_factory=dict)
    moments: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((label, time.monotonic() - started))

    def wrap(self, owner: Any, name: str, label: str) -> None:
        """Replace owner.name by a timed version (this process only; the tool is unchanged)."""
        original = getattr(owner, name)
        calls = self.calls.setdefault(label, [])

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                calls.append(time.monotonic() - started)

        setattr(owner, name, timed)


class SilentUi:
    """The core's Ui for an unattended run: never asks, prints nothing."""

    interactive = False

    def ask(self, prompt: str, *, default: str | None = None, hide: bool = False) -> str:
        raise RuntimeError(f"the benchmark cannot answer {prompt!r}")

    def confirm(self, prompt: str) -> bool:
        return False

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    def result(self, message: str) -> None:
        pass


def split(args: argparse.Namespace) -> dict[str, Any]:
    """One cold headless sign-in, with the time of each step (item 7)."""
    marks = Marks()
    with marks.step("CLI imports (click, cli, login, settings, credentials)"):
        import awscli_saml_sso.cli  # noqa: F401 - the import set of the console script
        from awscli_saml_sso import credentials as creds_file
        from awscli_saml_sso.login import LoginOptions, issue_credentials, pick_targets, still_valid
        from awscli_saml_sso.settings import Settings
    ui = SilentUi()
    with marks.step("options, settings, still-valid check"):
        opts = LoginOptions(
            idp_nickname=args.idp_nickname,
            idp_url=args.idp_url,
            username=args.username,
            endpoint_url=args.endpoint_url,
            env=dict(os.environ),
        )
        settings = Settings.from_env()
        profile = creds_file.read_profile(creds_file.credentials_file(opts.env), opts.profile)
        if still_valid(opts, profile) is not None:
            raise RuntimeError("the split needs a fresh credentials file")
    with marks.step("sign-in module imports (signin, autofill, browser, proxy)"):
        from awscli_saml_sso.autofill import sign_in
        from awscli_saml_sso.browser import open_browser, resolve_browser
        from awscli_saml_sso.proxy import CaptureProxy
        from awscli_saml_sso.signin import HEADLESS_TIMEOUT, TerminalPrompter, choose_idp
    with marks.step("choose IdP (idps.json), resolve browser"):
        idp = choose_idp(opts, settings, ui)
        spec = resolve_browser(opts.browser or idp.browser, opts.driver_path)

    with marks.step("proxy: import mitmproxy"):
        import mitmproxy.certs
        from mitmproxy import addons, http, master, options  # noqa: F401 - what _serve loads
    marks.wrap(mitmproxy.certs.CertStore, "from_store", "proxy: CA load/creation")
    with marks.step("browser: import selenium"):
        import selenium.webdriver.common.service
        from selenium.webdriver import Chrome  # noqa: F401
        from selenium.webdriver.chrome.options import Options  # noqa: F401
        from selenium.webdriver.chrome.service import Service  # noqa: F401
        from selenium.webdriver.edge.options import Options as EdgeOptions  # noqa: F401
    service_class = selenium.webdriver.common.service.Service
    marks.wrap(service_class, "start", "browser: chromedriver up (Service.start)")

    prompter = TerminalPrompter(opts, idp, ui)
    asked: dict[str, float] = {}
    for name in ("username", "password"):
        original = getattr(prompter, name)

        def first_call(original: Callable[[], str] = original, name: str = name) -> str:
            asked.setdefault(name, time.monotonic())
            return original()

        setattr(prompter, name, first_call)

    proxy_stack = contextlib.ExitStack()
    browser_stack = contextlib.ExitStack()
    with proxy_stack, browser_stack:
        with marks.step("proxy: start (CA, listen)"):
            proxy = proxy_stack.enter_context(CaptureProxy(settings.private_dir("proxy")))
        with marks.step("browser: start (chromedriver + Chromium + session)"):
            driver = browser_stack.enter_context(
                open_browser(
                    spec,
                    headless=True,
                    profile_dir=settings.browser_profile(idp.nickname),
                    proxy_port=proxy.port,
                    ca_spki_sha256=proxy.ca_spki_sha256,
                )
            )
        began = time.monotonic()
        saml_response = sign_in(
            driver,
            proxy,
            idp.url,
            prompter=prompter,
            autofill=True,
            timeout=opts.timeout or HEADLESS_TIMEOUT,
        )
        captured = time.monotonic()
        form_seen = min(asked.values(), default=None)
        if form_seen is None:
            marks.steps.append(("IdP pages: open URL -> SAMLResponse (no form)", captured - began))
        else:
            marks.steps.append(("IdP pages: open URL -> login form filled", form_seen - began))
            marks.steps.append(("IdP pages: form -> SAMLResponse captured", captured - form_seen))
        marks.wrap(driver, "get", "browser quit: blank page (driver.get)")
        marks.wrap(driver, "quit", "browser quit: driver.quit()")
        chrome: Any = driver  # Chrome has .service; the remote WebDriver type does not
        marks.wrap(chrome.service, "stop", "browser quit: of which Service.stop")
        with marks.step("browser: teardown (blank page, quit, kill group)"):
            browser_stack.close()
        with marks.step("proxy: stop"):
            proxy_stack.close()
    with marks.step("save IdP (idps.json)"):
        settings.save_idp(replace(idp, username=opts.username, browser=spec.name))
    with marks.step("parse SAMLResponse, pick role"):
        from awscli_saml_sso.saml import parse_saml_response

        assertion = parse_saml_response(saml_response)
        targets = pick_targets(opts, assertion, ui)
    with marks.step("STS: import boto3/botocore"):
        import boto3.session  # noqa: F401
        import botocore.session  # noqa: F401
        from botocore.config import Config  # noqa: F401

        from awscli_saml_sso import sts
    marks.wrap(sts, "_client", "STS: of which client creation")
    with marks.step("STS: AssumeRoleWithSAML (client + call)"):
        issued = issue_credentials(opts, assertion, targets, ui)
    with marks.step("write credentials file"):
        creds_file.write_credentials(creds_file.credentials_file(opts.env), issued)
    with marks.step("GetCallerIdentity check (client + call)"):
        keys = next(iter(issued.values()))
        role = assertion.roles[0]
        sts.caller_identity(keys, sts.StsTarget(sts.region_for(role, None), opts.endpoint_url))
    return {
        "t0": _T0,
        "end": time.monotonic(),
        "steps": marks.steps,
        "calls": {label: [sum(v), len(v)] for label, v in marks.calls.items() if v},
        "vm_hwm_kib": vm_hwm_kib(),
        "warm": form_seen is None,
    }


# -- write_credentials() into a big file -------------------------------------------------------


def write(args: argparse.Namespace) -> dict[str, Any]:
    """Time write_credentials() updating one profile of a big file, on a fresh copy each run."""
    from awscli_saml_sso.credentials import TemporaryCredentials, read_profile, write_credentials

    base = Path(args.file)
    target = Path(args.work) / "credentials"
    keys = TemporaryCredentials(
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
    p = sub.add_parser("split")
    p.add_argument("--idp-nickname", required=True)
    p.add_argument("--idp-url", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--endpoint-url", required=True)
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
        "split": split,
        "write": write,
        "sts-floor": sts_floor,
    }
    emit(handlers[args.command](args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
