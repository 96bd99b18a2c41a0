"""From a Keycloak assertion to working credentials, through the real CLI and the AWS emulator.

The assertion is issued by the rig's Keycloak (signed in over plain HTTP, no browser); the
tool runs as a real process in a sandboxed home; the written profile is used with boto3 and
with the `aws` CLI to list the demo bucket.
"""

from __future__ import annotations

import configparser
import os
import re
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from support.rig import Rig
from support.sandbox import Sandbox

pytestmark = pytest.mark.rig


def profile(sandbox: Sandbox, name: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(sandbox.credentials_file)
    return dict(parser[name])


def list_bucket_with_boto3(sandbox: Sandbox, rig: Rig, name: str) -> int:
    keys = profile(sandbox, name)
    s3 = boto3.client(
        "s3",
        endpoint_url=rig.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=keys["aws_access_key_id"],
        aws_secret_access_key=keys["aws_secret_access_key"],
        aws_session_token=keys["aws_session_token"],
    )
    return int(s3.list_objects_v2(Bucket=rig.bucket)["ResponseMetadata"]["HTTPStatusCode"])


def aws_cli(sandbox: Sandbox, rig: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["aws", "--endpoint-url", rig.endpoint_url, "--region", "us-east-1", *args],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_response(sandbox: Sandbox, rig: Rig, user: str) -> Path:
    path = sandbox.root / f"{user}.b64"
    path.write_text(rig.saml_response(user))
    return path


def run_file(
    sandbox: Sandbox, rig: Rig, user: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    response = str(write_response(sandbox, rig, user))
    return sandbox.run(
        ["--saml-response-file", response, "--endpoint-url", rig.endpoint_url, *args],
        stdin=stdin,
    )


def test_user_single_role_is_taken_and_profile_works(sandbox: Sandbox, rig: Rig) -> None:
    result = run_file(sandbox, rig, "aws_user", "--no-prompt")
    assert result.returncode == 0, result.stderr
    assert (
        f"Using {rig.role_user_arn} (AWS account 000000000000; the only role this identity has)"
        in result.stderr
    )
    assert "under the saml profile" in result.stdout
    assert "Signed in as arn:aws:sts::000000000000:assumed-role/Role.User/aws_user" in result.stdout
    keys = profile(sandbox, "saml")
    assert keys["x_role_arn"] == rig.role_user_arn
    assert keys["x_principal_arn"] == rig.saml_provider_arn
    assert keys["aws_security_token"] == keys["aws_session_token"]
    expires = datetime.fromisoformat(keys["x_security_token_expires"].replace("Z", "+00:00"))
    assert timedelta(minutes=50) < expires - datetime.now(timezone.utc) <= timedelta(hours=1)
    assert stat.S_IMODE(sandbox.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(sandbox.credentials_file.parent.stat().st_mode) == 0o700
    assert list_bucket_with_boto3(sandbox, rig, "saml") == 200
    listed = aws_cli(sandbox, rig, "--profile", "saml", "s3", "ls", f"s3://{rig.bucket}")
    assert listed.returncode == 0, listed.stderr
    who = aws_cli(sandbox, rig, "--profile", "saml", "sts", "get-caller-identity")
    assert "assumed-role/Role.User/aws_user" in who.stdout


def test_admin_menu_through_stdin_and_session_duration(sandbox: Sandbox, rig: Rig) -> None:
    # Ask first with an invalid answer: the menu is shown again.
    result = run_file(sandbox, rig, "aws_admin", stdin="9\nRole.Admin\n")
    assert result.returncode == 0, result.stderr
    assert "Please choose the role" in result.stderr
    assert "Please answer with a number" in result.stderr
    keys = profile(sandbox, "saml")
    assert keys["x_role_arn"] == rig.role_admin_arn
    expires = datetime.fromisoformat(keys["x_security_token_expires"].replace("Z", "+00:00"))
    assert expires - datetime.now(timezone.utc) > timedelta(hours=7)  # SessionDuration 28800
    assert list_bucket_with_boto3(sandbox, rig, "saml") == 200


def test_admin_role_arn_and_region_output_config(sandbox: Sandbox, rig: Rig) -> None:
    result = run_file(
        sandbox,
        rig,
        "aws_admin",
        "--role-arn",
        rig.role_admin_arn,
        "--profile",
        "admin",
        "--region",
        "eu-west-3",
        "--output",
        "json",
        "--no-prompt",
    )
    assert result.returncode == 0, result.stderr
    assert profile(sandbox, "admin")["x_role_arn"] == rig.role_admin_arn
    config = sandbox.config_file.read_text()
    assert "[profile admin]" in config and "region = eu-west-3" in config
    listed = aws_cli(sandbox, rig, "--profile", "admin", "s3", "ls", f"s3://{rig.bucket}")
    assert listed.returncode == 0, listed.stderr


def test_admin_all_roles_writes_one_profile_per_role(sandbox: Sandbox, rig: Rig) -> None:
    result = run_file(sandbox, rig, "aws_admin", "--all-roles", "--no-prompt")
    assert result.returncode == 0, result.stderr
    assert profile(sandbox, "Role.Admin")["x_role_arn"] == rig.role_admin_arn
    assert profile(sandbox, "Role.User")["x_role_arn"] == rig.role_user_arn
    for name in ("Role.Admin", "Role.User"):
        assert list_bucket_with_boto3(sandbox, rig, name) == 200


def test_ambiguous_role_under_no_prompt_is_usage_error(sandbox: Sandbox, rig: Rig) -> None:
    result = run_file(sandbox, rig, "aws_admin", "--no-prompt")
    assert result.returncode == 2
    assert "--role-arn or --role-selection" in result.stderr
    assert not sandbox.credentials_file.exists()


def test_void_user_has_no_role(sandbox: Sandbox, rig: Rig) -> None:
    result = run_file(sandbox, rig, "aws_void", "--no-prompt")
    assert result.returncode == 5
    assert "this identity has no AWS role" in result.stderr
    assert "Traceback" not in result.stderr


def test_response_from_stdin_url_encoded(sandbox: Sandbox, rig: Rig) -> None:
    from urllib.parse import quote

    encoded = quote(rig.saml_response("aws_user"), safe="")
    result = sandbox.run(
        ["--saml-response-file", "-", "--endpoint-url", rig.endpoint_url, "--no-prompt"],
        stdin=encoded,
    )
    assert result.returncode == 0, result.stderr


def test_existing_files_keep_everything_else(sandbox: Sandbox, rig: Rig) -> None:
    sandbox.credentials_file.parent.mkdir(mode=0o700)
    original = (
        "# my keys, do not lose this comment\n"
        "[default]\n"
        "AWS_ACCESS_KEY_ID = AKIAEXAMPLE\n"
        "aws_secret_access_key=secret\n"
        "\n"
        "; old saml profile\n"
        "[saml]\n"
        "region = eu-west-1  \n"
        "aws_access_key_id = OLD\n"
    )
    sandbox.credentials_file.write_text(original)
    sandbox.credentials_file.chmod(0o640)
    result = run_file(sandbox, rig, "aws_user", "--no-prompt")
    assert result.returncode == 0, result.stderr
    text = sandbox.credentials_file.read_text()
    assert text.startswith(original.split("[saml]")[0])
    assert "; old saml profile\n[saml]\nregion = eu-west-1  \naws_access_key_id = ASIA" in text
    # A file of keys open to the group is made private, with a warning (issue 10, item 11).
    assert "was open to other users (mode 0640); it is now 0600" in result.stderr
    assert stat.S_IMODE(sandbox.credentials_file.stat().st_mode) == 0o600


def test_corrupt_credentials_file_is_left_untouched(sandbox: Sandbox, rig: Rig) -> None:
    sandbox.credentials_file.parent.mkdir(mode=0o700)
    corrupt = "aws_access_key_id = before any section\n[saml\n"
    sandbox.credentials_file.write_text(corrupt)
    result = run_file(sandbox, rig, "aws_user", "--no-prompt")
    assert result.returncode == 7, result.stderr
    assert str(sandbox.credentials_file) in result.stderr
    assert sandbox.credentials_file.read_text() == corrupt
    assert "Traceback" not in result.stderr


def test_unreachable_sts_exits_6(sandbox: Sandbox, rig: Rig) -> None:
    result = sandbox.run(
        [
            "--saml-response-file",
            str(write_response(sandbox, rig, "aws_user")),
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--no-prompt",
        ]
    )
    assert result.returncode == 6, result.stderr
    assert "could not reach http://127.0.0.1:9" in result.stderr
    assert not sandbox.credentials_file.exists()


def test_secrets_never_reach_the_debug_log(sandbox: Sandbox, rig: Rig) -> None:
    response = rig.saml_response("aws_user")
    path = sandbox.root / "r.b64"
    path.write_text(response)
    result = sandbox.run(
        ["--saml-response-file", str(path), "--endpoint-url", rig.endpoint_url, "--no-prompt"],
        extra_env={"ASS_LOG_LEVEL": "DEBUG"},
    )
    assert result.returncode == 0, result.stderr
    keys = profile(sandbox, "saml")
    output = result.stdout + result.stderr
    # The whole assertion, and a piece of its middle (its first characters are the same in
    # every Keycloak response, so they would prove nothing).
    middle = response[len(response) // 2 : len(response) // 2 + 40]
    for secret in (keys["aws_secret_access_key"], keys["aws_session_token"], response, middle):
        assert secret not in output
    assert re.search(r"DEBUG", result.stderr)
    assert os.environ.get("HOME") != sandbox.env["HOME"]
