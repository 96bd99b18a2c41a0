"""Staying signed in: credential_process with the real AWS CLI, single-flight refresh, exec, env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.rig import Rig
from support.sandbox import Sandbox, leftovers

pytestmark = [pytest.mark.rig, pytest.mark.browser]

NICK = "kc"


@pytest.fixture
def signed_up(sandbox: Sandbox, rig: Rig) -> Sandbox:
    """A user who signed in once interactively (username stored, password in the keyring)."""
    sandbox.env["ASS_ENDPOINT_URL"] = rig.endpoint_url
    first = sandbox.run(
        ["--idp-nickname", NICK, "--idp-url", rig.idp_login_url, "--profile", "interactive"],
        stdin="aws_user\naws_user\n",
    )
    assert first.returncode == 0, first.stderr
    return sandbox


def aws(user: Sandbox, rig: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["aws", "--region", "us-east-1", "--endpoint-url", rig.endpoint_url, *args],
        env=user.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cache_files(user: Sandbox) -> list[Path]:
    return sorted((user.config_dir / "cache").glob("*.json"))


def test_credential_process_profile_and_single_flight_refresh(signed_up: Sandbox, rig: Rig) -> None:
    user = signed_up
    configured = user.run(
        [
            "configure-profile",
            "rigged",
            "--idp-nickname",
            NICK,
            "--role-arn",
            rig.role_user_arn,
            "--region",
            "us-east-1",
            "--endpoint-url",
            rig.endpoint_url,
        ]
    )
    assert configured.returncode == 0, configured.stderr
    config = user.config_file.read_text()
    assert "[profile rigged]" in config and "credential-process --idp-nickname kc" in config

    before = rig.count_logins("aws_user")
    listed = aws(user, rig, "--profile", "rigged", "s3", "ls", f"s3://{rig.bucket}")
    assert listed.returncode == 0, listed.stderr
    assert rig.count_logins("aws_user") == before + 1
    (cache,) = cache_files(user)
    assert cache.stat().st_mode & 0o777 == 0o600
    # The cache, not ~/.aws/credentials (which would take precedence over credential_process).
    assert "[rigged]" not in (
        user.credentials_file.read_text() if user.credentials_file.exists() else ""
    )

    again = aws(user, rig, "--profile", "rigged", "sts", "get-caller-identity")
    assert again.returncode == 0, again.stderr
    assert rig.count_logins("aws_user") == before + 1  # within validity: no browser, no sign-in

    # Expire the cache; 20 AWS CLI commands at once must share one sign-in.
    document = json.loads(cache.read_text())
    document["Expiration"] = "2000-01-01T00:00:00Z"
    cache.write_text(json.dumps(document))
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(
            pool.map(
                lambda _: aws(user, rig, "--profile", "rigged", "sts", "get-caller-identity"),
                range(20),
            )
        )
    failures = [r.stderr for r in results if r.returncode != 0]
    assert failures == []
    assert all("assumed-role/Role.User/aws_user" in r.stdout for r in results)
    assert rig.count_logins("aws_user") == before + 2
    assert json.loads(cache.read_text())["Expiration"] != "2000-01-01T00:00:00Z"
    assert leftovers(user) == []


def test_credential_process_prints_only_json(signed_up: Sandbox, rig: Rig) -> None:
    result = signed_up.run(
        ["credential-process", "--idp-nickname", NICK, "--role-arn", rig.role_user_arn]
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["Version"] == 1
    assert set(document) == {
        "Version",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    }


def test_refresh_that_needs_mfa_fails_fast(sandbox: Sandbox, rig: Rig) -> None:
    began = time.monotonic()
    result = sandbox.run(
        [
            "credential-process",
            "--idp-nickname",
            "mfa",
            "--idp-url",
            rig.idp_login_url,
            "--username",
            "aws_mfa",
            "--role-arn",
            rig.role_user_arn,
            "--endpoint-url",
            rig.endpoint_url,
        ],
        extra_env={"ASS_PASSWORD": "aws_mfa"},
    )
    assert result.returncode == 3, result.stderr
    assert "run `awscli_saml_sso --idp-nickname mfa" in result.stderr
    assert result.stdout == ""
    assert time.monotonic() - began < 30
    assert leftovers(sandbox) == []


def test_exec_passes_variables_and_exit_code(signed_up: Sandbox, rig: Rig) -> None:
    child = (
        "import os, sys, json\n"
        "keys = ['AWS_ACCESS_KEY_ID','AWS_SECRET_ACCESS_KEY','AWS_SESSION_TOKEN',"
        "'AWS_SECURITY_TOKEN','AWS_CREDENTIAL_EXPIRATION','AWS_REGION','AWS_DEFAULT_REGION',"
        "'AWS_PROFILE','AWS_DEFAULT_PROFILE']\n"
        "print(json.dumps({k: os.environ.get(k) for k in keys}))\n"
        "sys.exit(7)\n"
    )
    result = signed_up.run(
        [
            "exec",
            "--idp-nickname",
            NICK,
            "--role-arn",
            rig.role_user_arn,
            "--region",
            "eu-west-1",
            "--",
            sys.executable,
            "-c",
            child,
        ],
        extra_env={"AWS_PROFILE": "somewhere-else"},
    )
    assert result.returncode == 7, result.stderr
    seen = json.loads(result.stdout)
    assert seen["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert seen["AWS_SESSION_TOKEN"] == seen["AWS_SECURITY_TOKEN"]
    assert seen["AWS_REGION"] == seen["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert seen["AWS_CREDENTIAL_EXPIRATION"].endswith("Z")
    assert seen["AWS_PROFILE"] is None and seen["AWS_DEFAULT_PROFILE"] is None

    listed = signed_up.run(
        [
            "exec",
            "--profile",
            "interactive",
            "--",
            "aws",
            "--endpoint-url",
            rig.endpoint_url,
            "s3",
            "ls",
            f"s3://{rig.bucket}",
        ]
    )
    assert listed.returncode == 0, listed.stderr


@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_env_output_evaluated_by_shell_works(signed_up: Sandbox, rig: Rig, shell: str) -> None:
    tool = (
        f"awscli_saml_sso env --shell {shell} --idp-nickname {NICK} --role-arn {rig.role_user_arn}"
    )
    check = f"aws --endpoint-url {rig.endpoint_url} s3 ls s3://{rig.bucket}"
    script = f'eval "$({tool})" && {check}' if shell == "bash" else f"{tool} | source; and {check}"
    result = subprocess.run(
        [shell, "-c", script],
        env={**signed_up.env, "AWS_PROFILE": "does-not-exist"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_env_and_exec_through_a_profile(signed_up: Sandbox, rig: Rig) -> None:
    # The profile `interactive` is valid: env prints only the exports, exec only the child's.
    check = f"aws --endpoint-url {rig.endpoint_url} s3 ls s3://{rig.bucket}"
    script = f'eval "$(awscli_saml_sso env --profile interactive)" && {check}'
    evaluated = subprocess.run(
        ["bash", "-c", script], env=signed_up.env, capture_output=True, text=True, timeout=120
    )
    assert evaluated.returncode == 0, evaluated.stderr
    child = "import os; print(os.environ.get('ASS_PASSWORD'))"
    ran = signed_up.run(
        ["exec", "--profile", "interactive", "--", sys.executable, "-c", child],
        extra_env={"ASS_PASSWORD": "must-not-leak"},
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "None\n"  # nothing but the child's output, and no secret inherited


def test_ctrl_c_in_exec_lets_the_child_finish(signed_up: Sandbox) -> None:
    import signal

    child = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *a: (print('cleaned up', flush=True), sys.exit(5)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    tool = signed_up.start(["exec", "--profile", "interactive", "--", sys.executable, "-c", child])
    assert tool.stdout is not None
    assert tool.stdout.readline() == "ready\n"
    os.killpg(tool.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
    out, _ = tool.communicate(timeout=30)
    assert "cleaned up" in out
    assert tool.returncode == 5
