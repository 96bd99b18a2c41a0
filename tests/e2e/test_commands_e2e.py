"""Role chaining, `exec --server` and `console`, through the installed CLI against the rig.

Assertions come from the rig's Keycloak over plain HTTP (`--saml-response-file`); STS,
IAM and S3 are the rig's moto server; the console's federation endpoint, which no emulator
implements, is the loopback stand-in of support/federation.py.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import boto3
import psutil
import pytest
from support.federation import federation_stand_in
from support.rig import Rig
from support.sandbox import Sandbox, leftovers

pytestmark = pytest.mark.rig


def chained_arn(rig: Rig) -> str:
    return rig.role_user_arn.replace("Role.User", "Role.Chained")


def response_file(sandbox: Sandbox, rig: Rig, user: str = "aws_user") -> str:
    path = sandbox.root / f"{user}.b64"
    path.write_text(rig.saml_response(user))
    return str(path)


def profile(sandbox: Sandbox, name: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(sandbox.credentials_file)
    return dict(parser[name])


def caller(rig: Rig, access: str, secret: str, token: str) -> str:
    sts = boto3.client(
        "sts",
        endpoint_url=rig.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )
    return str(sts.get_caller_identity()["Arn"])


def expires_in(text: str) -> timedelta:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) - datetime.now(timezone.utc)


# Role chaining ---------------------------------------------------------------------------------
def test_chained_sign_in_is_clamped_to_an_hour_and_works(sandbox: Sandbox, rig: Rig) -> None:
    result = sandbox.run(
        [
            "--saml-response-file",
            response_file(sandbox, rig, "aws_admin"),
            "--endpoint-url",
            rig.endpoint_url,
            "--role-arn",
            rig.role_admin_arn,
            "--chain-role-arn",
            chained_arn(rig),
            "--external-id",
            "team-42",
            "--duration",
            "7200",
            "--no-prompt",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "more than AWS allows for a chained role session (one hour)" in result.stderr
    assert f"Chaining from {rig.role_admin_arn} to {chained_arn(rig)}" in result.stderr
    assert "assumed-role/Role.Chained/aws_admin" in result.stdout  # session name carried over
    keys = profile(sandbox, "saml")
    assert keys["x_role_arn"] == chained_arn(rig)
    assert (
        timedelta(minutes=55) < expires_in(keys["x_security_token_expires"]) <= timedelta(hours=1)
    )
    arn = caller(
        rig, keys["aws_access_key_id"], keys["aws_secret_access_key"], keys["aws_session_token"]
    )
    assert arn.endswith(":assumed-role/Role.Chained/aws_admin")
    # Still valid: the chained profile is kept when the same chain is asked for again (at
    # the same STS endpoint: an emulator's keys never count for AWS).
    again = sandbox.run(
        [
            *("--role-arn", rig.role_admin_arn, "--chain-role-arn", chained_arn(rig)),
            *("--endpoint-url", rig.endpoint_url, "--no-prompt"),
        ]
    )
    assert again.returncode == 0, again.stderr
    assert "still holds valid credentials" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chain-role-arn", "arn:aws:iam::000000000000:user/bob"], "is not an IAM role ARN"),
        (["--external-id", "x1"], "--external-id only makes sense with --chain-role-arn"),
        (["--chain-role-arn", "arn:aws:iam::000000000000:role/R", "--all-roles"], "--all-roles"),
    ],
)
def test_bad_chain_options_are_usage_errors(
    sandbox: Sandbox, rig: Rig, args: list[str], message: str
) -> None:
    result = sandbox.run(["--saml-response-file", "unused", "--no-prompt", *args])
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_exec_renews_chained_keys_first_when_too_little_is_left(sandbox: Sandbox, rig: Rig) -> None:
    base = [
        "exec",
        "--idp-nickname", "kc",
        "--role-arn", rig.role_user_arn,
        "--chain-role-arn", chained_arn(rig),
        "--duration", "900",
        "--saml-response-file", response_file(sandbox, rig),
        "--endpoint-url", rig.endpoint_url,
    ]  # fmt: skip
    show = [sys.executable, "-c", "import os; print(os.environ['AWS_ACCESS_KEY_ID'])"]
    first = sandbox.run([*base, "--min-remaining", "60", "--", *show])
    cached = sandbox.run([*base, "--min-remaining", "60", "--", *show])
    # More than the keys' whole life: stale however fast the runs follow each other (899
    # once counted on a second passing between the runs).
    renewed = sandbox.run([*base, "--min-remaining", "1200", "--", *show])
    for result in (first, cached, renewed):
        assert result.returncode == 0, result.stderr
    assert first.stdout == cached.stdout  # the chain's cache served the second run
    assert renewed.stdout != first.stdout  # under --min-remaining: the whole chain renewed
    # The cache is keyed by the chain: the SAML role alone has an entry of its own.
    unchained = [item for item in base if item not in ("--chain-role-arn", chained_arn(rig))]
    alone = sandbox.run([*unchained, "--min-remaining", "60", "--", *show])
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout not in (first.stdout, renewed.stdout)
    assert len(list((sandbox.config_dir / "cache").glob("kc-*.json"))) == 2


@pytest.mark.browser
def test_credential_process_profile_with_a_chained_role(sandbox: Sandbox, rig: Rig) -> None:
    sandbox.env["ASS_ENDPOINT_URL"] = rig.endpoint_url
    first = sandbox.run(
        ["--idp-nickname", "kc", "--idp-url", rig.idp_login_url, "--profile", "interactive"],
        stdin="aws_user\naws_user\n",
    )
    assert first.returncode == 0, first.stderr
    configured = sandbox.run(
        [
            "configure-profile",
            "chained",
            "--idp-nickname",
            "kc",
            "--role-arn",
            rig.role_user_arn,
            "--chain-role-arn",
            chained_arn(rig),
            "--region",
            "us-east-1",
        ]
    )
    assert configured.returncode == 0, configured.stderr
    assert f"--chain-role-arn {chained_arn(rig)}" in sandbox.config_file.read_text()
    who = subprocess.run(
        ["aws", "--profile", "chained", "--endpoint-url", rig.endpoint_url,
         "sts", "get-caller-identity", "--output", "json"],
        env=sandbox.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"].endswith(":assumed-role/Role.Chained/aws_user")
    [cached] = (sandbox.config_dir / "cache").glob("kc-*.json")
    assert expires_in(json.loads(cached.read_text())["Expiration"]) <= timedelta(hours=1)
    assert leftovers(sandbox) == []


# exec --server ---------------------------------------------------------------------------------
JOB = textwrap.dedent(
    """
    import json, os, subprocess, sys, time, urllib.error, urllib.request
    import boto3

    endpoint = sys.argv[1]
    url = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    statuses = []
    for header in (None, "wrong-token"):
        request = urllib.request.Request(url, headers={"Authorization": header} if header else {})
        try:
            urllib.request.urlopen(request, timeout=5)
            statuses.append(200)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    session = boto3.Session()
    sts = session.client("sts", endpoint_url=endpoint)
    s3 = session.client("s3", endpoint_url=endpoint)
    before = session.get_credentials().get_frozen_credentials().access_key
    first = sts.get_caller_identity()["Arn"]
    deadline = time.monotonic() + 60
    after = before
    while after == before and time.monotonic() < deadline:
        time.sleep(1)
        after = session.get_credentials().get_frozen_credentials().access_key
    second = sts.get_caller_identity()["Arn"]
    listed = s3.list_objects_v2(Bucket="example-bucket")["KeyCount"]
    cli = subprocess.run(
        ["aws", "--endpoint-url", endpoint, "sts", "get-caller-identity", "--output", "json"],
        capture_output=True, text=True, timeout=60,
    )
    print(json.dumps({
        "static_keys": "AWS_ACCESS_KEY_ID" in os.environ,
        "statuses": statuses, "before": before, "after": after, "first": first,
        "second": second, "listed": listed, "cli": cli.returncode, "cli_out": cli.stdout,
        "cli_err": cli.stderr[-500:],
    }))
    """
)


def test_exec_server_keeps_boto3_and_the_aws_cli_working_across_a_renewal(
    sandbox: Sandbox, rig: Rig
) -> None:
    job = sandbox.root / "job.py"
    job.write_text(JOB)
    result = sandbox.run(
        [
            "exec",
            "--server",
            "--idp-nickname",
            "kc",
            "--role-arn",
            rig.role_user_arn,
            "--chain-role-arn",
            chained_arn(rig),
            "--duration",
            "900",
            "--min-remaining",
            "890",  # renew ten seconds after the first keys were issued
            "--saml-response-file",
            response_file(sandbox, rig),
            "--endpoint-url",
            rig.endpoint_url,
            "--",
            sys.executable,
            str(job),
            rig.endpoint_url,
        ],
        extra_env={"AWS_ACCESS_KEY_ID": "stale", "AWS_PROFILE": "nope"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["static_keys"] is False
    assert report["statuses"] == [403, 403]
    assert report["before"] != report["after"], "the keys were not renewed within a minute"
    for arn in (report["first"], report["second"], json.loads(report["cli_out"])["Arn"]):
        assert arn.endswith(":assumed-role/Role.Chained/aws_user")
    assert report["listed"] >= 1
    assert report["cli"] == 0, report["cli_err"]
    assert leftovers(sandbox) == []


def test_exec_server_passes_the_exit_code_on(sandbox: Sandbox, rig: Rig) -> None:
    result = sandbox.run(
        [
            "exec",
            "--server",
            "--saml-response-file",
            response_file(sandbox, rig),
            "--endpoint-url",
            rig.endpoint_url,
            "--",
            sys.executable,
            "-c",
            "import os, sys; sys.exit(3 if os.environ['AWS_CONTAINER_CREDENTIALS_FULL_URI']"
            ".startswith('http://127.0.0.1:') else 1)",
        ],
    )
    assert result.returncode == 3, result.stderr


# console ---------------------------------------------------------------------------------------
def test_console_print_sends_the_documented_request(sandbox: Sandbox, rig: Rig) -> None:
    with federation_stand_in() as stand_in:
        result = sandbox.run(
            [
                "console",
                "--print",
                "--saml-response-file",
                response_file(sandbox, rig),
                "--endpoint-url",
                rig.endpoint_url,
                "--duration",
                "5400",
            ],
            extra_env={"ASS_FEDERATION_URL": stand_in.url},
        )
    assert result.returncode == 0, result.stderr
    assert stand_in.refused == []
    [request] = stand_in.accepted
    assert request.duration == 5400
    keys = profile(sandbox, "saml")
    assert request.session == {
        "sessionId": keys["aws_access_key_id"],
        "sessionKey": keys["aws_secret_access_key"],
        "sessionToken": keys["aws_session_token"],
    }
    url = urlsplit(result.stdout.strip())
    assert f"{url.scheme}://{url.netloc}{url.path}" == stand_in.url
    query = parse_qs(url.query)
    assert query == {
        "Action": ["login"],
        "Destination": ["https://console.aws.amazon.com/"],
        "SigninToken": [request.token],
    }


def test_console_of_a_chained_role_is_clamped_to_an_hour(sandbox: Sandbox, rig: Rig) -> None:
    with federation_stand_in() as stand_in:
        result = sandbox.run(
            [
                "console",
                "--print",
                "--idp-nickname",
                "kc",
                "--role-arn",
                rig.role_user_arn,
                "--chain-role-arn",
                chained_arn(rig),
                "--saml-response-file",
                response_file(sandbox, rig),
                "--endpoint-url",
                rig.endpoint_url,
                "--duration",
                "43200",
            ],
            extra_env={"ASS_FEDERATION_URL": stand_in.url},
        )
    assert result.returncode == 0, result.stderr
    assert "console session of a chained role (one hour)" in result.stderr
    [request] = stand_in.accepted
    assert request.duration == 3600
    session = request.session
    arn = caller(rig, session["sessionId"], session["sessionKey"], session["sessionToken"])
    assert arn.endswith(":assumed-role/Role.Chained/aws_user")


def test_console_refuses_a_plain_http_federation_url_off_loopback(
    sandbox: Sandbox, rig: Rig
) -> None:
    result = sandbox.run(
        ["console", "--print", "--saml-response-file", response_file(sandbox, rig)],
        extra_env={"ASS_FEDERATION_URL": "http://example.com/federation"},
    )
    assert result.returncode == 2
    assert "https URL (http only on loopback)" in result.stderr


def test_console_opens_a_browser_profile_per_aws_profile(
    sandbox: Sandbox, rig: Rig, xvfb: str
) -> None:
    with federation_stand_in() as stand_in:
        result = sandbox.run(
            [
                "console",
                "--profile",
                "team-a",
                "--saml-response-file",
                response_file(sandbox, rig),
                "--endpoint-url",
                rig.endpoint_url,
            ],
            extra_env={"ASS_FEDERATION_URL": stand_in.url},
        )
    assert result.returncode == 0, result.stderr
    window = sandbox.config_dir / "console" / "team-a"
    assert f"with the browser profile {window}" in result.stderr
    page = sandbox.config_dir / "console" / "open-console.html"
    assert oct(page.stat().st_mode & 0o777) == "0o600"
    flag = f"--user-data-dir={window}"
    opened = [p for p in psutil.process_iter(["cmdline"]) if flag in (p.info["cmdline"] or [])]
    try:
        assert opened, "no browser was started with the profile's own directory"
        for process in opened:  # the sign-in token never shows in a process's arguments
            assert "SigninToken" not in " ".join(process.info["cmdline"])
    finally:
        for group in {os.getpgid(p.pid) for p in opened if p.is_running()}:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        psutil.wait_procs(opened, timeout=10)
    assert leftovers(sandbox) == []
