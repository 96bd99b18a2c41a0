"""Items beside saml2aws on the same rig (issue 14): A and B alternate, pair by pair.

    8  warm sign-in: ours with the IdP session alive (replay) vs saml2aws's full login
    9  "still valid" no-op: ours vs saml2aws login without --force
    10 --all-roles, N roles, against an STS that answers in 50 ms (ours alone)

Both tools reach STS the same way, through peer.StsForwarder (HTTPS_PROXY + AWS_CA_BUNDLE,
the regional endpoint name, the emulator behind it), and Keycloak through peer.IdpForwarder.
Memory is the whole process tree's (summed RSS, sampled every 20 ms), not one process's.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import fixtures
import peer
from harness import (
    IDP_NICKNAME,
    ROLE_USER_ARN,
    USERNAME,
    Bench,
    BenchError,
    Run,
    expect,
    read_profile,
)

WARM_RATIO_TARGET = 1.0
ROLES_TARGET = 8.0


@dataclass
class Pair:
    """One compared item: our samples and saml2aws's, taken alternately."""

    label: str
    ours: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)
    ours_tree: list[tuple[int, int]] = field(default_factory=list)  # (bytes, processes)
    theirs_tree: list[tuple[int, int]] = field(default_factory=list)
    target: str = ""
    error: str = ""
    note: str = ""

    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.theirs, strict=False) if b > 0]


@dataclass
class SideBySide:
    peer: str  # which saml2aws, or why none
    pairs: list[Pair] = field(default_factory=list)


def _ours_args(idp_url: str, *extra: str) -> list[str]:
    return [
        "--idp-nickname", IDP_NICKNAME, "--idp-url", idp_url, "--username", USERNAME,
        "--region", "us-east-1", "--no-prompt", *extra,
    ]  # fmt: skip


def _theirs_args(config: Path, credentials: Path, idp_url: str, *extra: str) -> list[str]:
    return [
        "login", "--config", str(config), "--idp-account", "default",
        "--idp-provider", "KeyCloak", "--url", idp_url, "--username", USERNAME,
        "--role", ROLE_USER_ARN, "--skip-prompt", "--mfa", "Auto", "--profile", "saml",
        "--credentials-file", str(credentials), "--region", "us-east-1",
        "--disable-keychain", "--session-duration", "3600", "--quiet", *extra,
    ]  # fmt: skip


def _check(run: Run, what: str, credentials: Path) -> None:
    expect(run, what)
    if not read_profile(credentials, "saml").get("aws_access_key_id"):
        raise BenchError(f"{what} wrote no [saml] keys")


def _tree(run: Run) -> tuple[int, int]:
    return run.tree_peak_bytes, run.tree_processes


def item_beside(bench: Bench, roles: int) -> SideBySide:
    binary, which = peer.saml2aws_binary(build=False)
    result = SideBySide(which)
    parts = urlsplit(bench.idp_url)
    with (
        peer.idp_forwarder(f"{parts.scheme}://{parts.netloc}") as idp_base,
        peer.sts_forwarder(bench.endpoint_url, bench.root / "sts-ca") as via,
    ):
        # saml2aws needs the forwarder (it drops Keycloak's Secure cookies over http); ours
        # treats loopback as secure, as browsers do, and signs in at Keycloak directly.
        theirs_idp_url, idp_url = idp_base + parts.path, bench.idp_url
        warm = Pair("8 warm sign-in (ours: IdP session alive)", target="ratio <= 1.0")
        noop = Pair('9 "still valid" no-op', target="ours <= 0.03 s")
        result.pairs += [warm, noop]
        try:
            ours_home = bench.new_home("beside-ours")
            expect(
                bench.tool(ours_home, _ours_args(idp_url), password=True, timeout=180,
                           extra_env=via),
                "our first (browser) sign-in",
            )  # fmt: skip
            theirs_home = bench.new_home("beside-saml2aws")
            config = theirs_home / "home" / ".saml2aws"
            peer.saml2aws_config(config, theirs_idp_url, ROLE_USER_ARN)
            theirs_env = {**via, "SAML2AWS_PASSWORD": USERNAME}
            credentials = bench.credentials(theirs_home)
            for _ in range(bench.runs):
                run = bench.tool(ours_home, _ours_args(idp_url, "--force"), password=False,
                                 timeout=120, extra_env=via)  # fmt: skip
                _check(run, "our warm sign-in (no password given)", bench.credentials(ours_home))
                if "no browser needed" not in run.stderr:
                    warm.note = "some warm runs of ours used the browser"
                warm.ours.append(run.seconds)
                warm.ours_tree.append(_tree(run))
                if binary is None:
                    continue
                forced = _theirs_args(config, credentials, theirs_idp_url, "--force")
                run = bench.tool(theirs_home, forced,
                                 password=False, timeout=60, extra_env=theirs_env,
                                 program=(str(binary),))  # fmt: skip
                _check(run, "saml2aws login", credentials)
                warm.theirs.append(run.seconds)
                warm.theirs_tree.append(_tree(run))
            for _ in range(bench.runs):
                run = expect(bench.tool(ours_home, _ours_args(idp_url), password=False,
                                        timeout=60, extra_env=via), "our no-op")  # fmt: skip
                noop.ours.append(run.seconds)
                noop.ours_tree.append(_tree(run))
                if binary is None:
                    continue
                run = bench.tool(theirs_home, _theirs_args(config, credentials, theirs_idp_url),
                                 password=False, timeout=60, extra_env=theirs_env,
                                 program=(str(binary),))  # fmt: skip
                noop.theirs.append(expect(run, "saml2aws login (still valid)").seconds)
                noop.theirs_tree.append(_tree(run))
        except BenchError as exc:
            (warm if not warm.ours or len(warm.ours) < bench.runs else noop).error = str(exc)
    result.pairs.append(item_slow_sts(bench, roles))
    return result


def item_slow_sts(bench: Bench, roles: int) -> Pair:
    """--all-roles for `roles` roles against an STS that answers each call in 50 ms."""
    row = Pair(f"10 --all-roles, {roles:,} roles, STS answering in 50 ms (ours)",
               target=f"<= {ROLES_TARGET:g} s")  # fmt: skip
    assertion = bench.root / f"saml-{roles}-roles-slow.txt"
    assertion.write_text(fixtures.saml_response(roles))
    with peer.sts_forwarder(bench.endpoint_url, bench.root / "slow-sts-ca", delay=0.05) as via:
        for index in range(min(bench.runs, 2)):
            home = bench.new_home(f"slow-sts{index}")
            args = ["--saml-response-file", str(assertion), "--all-roles", "--region",
                    "us-east-1", "--no-prompt"]  # fmt: skip
            try:
                run = expect(
                    bench.tool(home, args, password=False, timeout=1800, extra_env=via),
                    "--all-roles against a 50 ms STS",
                )
            except BenchError as exc:
                row.error = str(exc)
                break
            row.ours.append(run.seconds)
            row.ours_tree.append(_tree(run))
    return row


# Report ---------------------------------------------------------------------------------------
def _span(values: list[float], unit: str = "s") -> str:
    if not values:
        return "-"
    digits = 3 if unit == "s" else 2
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _memory(trees: list[tuple[int, int]]) -> str:
    seen = [t for t in trees if t[0]]
    if not seen:
        return "-"
    peak, processes = max(seen)
    return f"{peak / 1024 / 1024:.0f} MiB, {processes} proc"


def print_side_by_side(result: SideBySide, markdown: bool) -> None:
    print(f"\nbeside {result.peer}: medians (min-max), A and B alternating; ratio pair by pair")
    header = f"{'item':54} {'ours':>22} {'saml2aws':>22} {'ratio':>20}  tree memory (ours / theirs)"
    print(header)
    print("-" * len(header))
    for pair in result.pairs:
        print(
            f"{pair.label:54} {_span(pair.ours):>22} {_span(pair.theirs):>22} "
            f"{_span(pair.ratios(), 'x'):>20}  "
            f"{_memory(pair.ours_tree)} / {_memory(pair.theirs_tree)}"
        )
        if pair.target:
            print(f"{'':55}target: {pair.target}")
        for text in (pair.error and f"error: {pair.error}", pair.note):
            if text:
                print(f"{'':55}{text}")
    if markdown:
        print(
            "\n| item | ours | saml2aws | ratio (pair by pair) | tree memory, ours "
            "| tree memory, saml2aws | target |"
        )
        print("|---|---:|---:|---:|---:|---:|---|")
        for pair in result.pairs:
            print(
                f"| {pair.label} | {_span(pair.ours)} s | {_span(pair.theirs)} s | "
                f"{_span(pair.ratios(), 'x')} | {_memory(pair.ours_tree)} | "
                f"{_memory(pair.theirs_tree)} | {pair.target} |"
            )
