"""The tool's main job, end to end: real CLI process, real Chromium, the rig's Keycloak and STS.

Each test runs as an isolated user (own HOME, AWS files, config dir) with a real OS keyring,
and checks that no browser, driver or proxy of that user is left running afterwards.
"""

from __future__ import annotations

import configparser
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pyotp
import pytest
from support.browsers import xdotool
from support.rig import Rig
from support.sandbox import Sandbox, assert_nothing_left, leftovers

pytestmark = [pytest.mark.rig, pytest.mark.browser]

NICK = "kc"


@pytest.fixture
def user(sandbox: Sandbox, rig: Rig) -> Iterator[Sandbox]:
    """A sandbox with the rig's STS endpoint; after the test, nothing of it may still run."""
    sandbox.env["ASS_ENDPOINT_URL"] = rig.endpoint_url
    yield sandbox
    assert_nothing_left(sandbox)


def first_login(user: Sandbox, rig: Rig, *extra: str) -> list[str]:
    return ["--idp-nickname", NICK, "--idp-url", rig.idp_login_url, *extra]


def role_of(user: Sandbox, profile: str = "saml") -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(user.credentials_file)
    return parser[profile]["x_role_arn"]


def stored_password(user: Sandbox, username: str) -> str | None:
    code = (
        "import keyring, sys\n"
        f"print(keyring.get_password('awscli_saml_sso:{NICK}', {username!r}) or '')\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], env=user.env, capture_output=True, text=True, timeout=30
    )
    return found.stdout.strip() or None


def list_bucket(user: Sandbox, rig: Rig, profile: str = "saml") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *("aws", "--profile", profile, "--endpoint-url", rig.endpoint_url),
            *("--region", "us-east-1", "s3", "ls", f"s3://{rig.bucket}"),
        ],
        env=user.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_user_headless_then_use_stored_asks_nothing(user: Sandbox, rig: Rig) -> None:
    result = user.run(first_login(user, rig), stdin="aws_user\naws_user\n")
    assert result.returncode == 0, result.stderr
    assert "Username" in result.stderr and "Password for aws_user" in result.stderr
    assert "Password saved in the OS keyring" in result.stderr
    assert "the only role this identity has" in result.stderr
    assert role_of(user) == rig.role_user_arn
    assert list_bucket(user, rig).returncode == 0
    # In the keyring; the tool's own record of the IdP has no place for a secret.
    assert stored_password(user, "aws_user") == "aws_user"
    (entry,) = json.loads((user.config_dir / "idps.json").read_text())
    assert entry.pop("issuer").startswith(rig.keycloak_url)  # remembered at the first sign-in
    assert entry == {
        "nickname": NICK,
        "url": rig.idp_login_url,
        "username": "aws_user",
        "browser": "chromium",
        "origins": [],
    }

    # Still valid: no browser at all.
    again = user.run(["--use-stored", "--idp-nickname", NICK, "--no-prompt"])
    assert again.returncode == 0, again.stderr
    assert "still holds valid credentials" in again.stdout
    assert "Signing in" not in again.stderr

    # Forced, with the Keycloak session alive in the persistent profile: no password typed.
    # Removing the stored password proves it: the run would need it and cannot ask.
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import keyring; keyring.delete_password('awscli_saml_sso:{NICK}', 'aws_user')",
        ],
        env=user.env,
        check=True,
        timeout=30,
    )
    forced = user.run(["--use-stored", "--idp-nickname", NICK, "--no-prompt", "--force"])
    assert forced.returncode == 0, forced.stderr
    assert role_of(user) == rig.role_user_arn


def test_admin_menu_via_stdin_and_role_arn(user: Sandbox, rig: Rig) -> None:
    # stdin: the password, then a menu answer by name.
    result = user.run(
        first_login(user, rig, "--username", "aws_admin"), stdin="aws_admin\nRole.Admin\n"
    )
    assert result.returncode == 0, result.stderr
    assert "Please choose the role" in result.stderr
    assert role_of(user) == rig.role_admin_arn
    second = user.run(
        ["--use-stored", "--idp-nickname", NICK, "--role-arn", rig.role_user_arn, "--no-prompt"]
    )
    assert second.returncode == 0, second.stderr  # a different role is never "still valid"
    assert "still holds valid" not in second.stdout
    assert role_of(user) == rig.role_user_arn
    assert list_bucket(user, rig).returncode == 0


def test_void_user_exits_5(user: Sandbox, rig: Rig) -> None:
    result = user.run(
        first_login(user, rig, "--username", "aws_void", "--no-prompt"),
        extra_env={"ASS_PASSWORD": "aws_void"},
    )
    assert result.returncode == 5, result.stderr
    assert "this identity has no AWS role" in result.stderr


def test_mfa_code_prompt_answered_with_totp(user: Sandbox, rig: Rig) -> None:
    code = pyotp.TOTP(rig.totp_secret_b32).now()
    result = user.run(first_login(user, rig, "--username", "aws_mfa"), stdin=f"aws_mfa\n{code}\n")
    assert result.returncode == 0, result.stderr
    assert "MFA code:" in result.stderr
    assert role_of(user) == rig.role_user_arn


def test_wrong_password_exits_3_quickly_with_keycloak_message(user: Sandbox, rig: Rig) -> None:
    before = rig.count_logins("aws_user", "LOGIN_ERROR")
    began = time.monotonic()
    result = user.run(
        first_login(user, rig, "--username", "aws_user", "--no-prompt"),
        extra_env={"ASS_PASSWORD": "wrong"},
    )
    elapsed = time.monotonic() - began
    assert result.returncode == 3, result.stderr
    assert "Invalid username or password." in result.stderr
    assert elapsed < 15
    assert rig.count_logins("aws_user", "LOGIN_ERROR") == before + 1  # submitted once
    assert not user.credentials_file.exists()
    assert "wrong" not in result.stderr.replace("Invalid username", "")


def test_unreachable_idp_exits_3(user: Sandbox) -> None:
    result = user.run(
        [
            *("--idp-nickname", "down", "--idp-url", "http://localhost:9/saml"),
            *("--username", "u", "--no-prompt", "--timeout", "20"),
        ],
        extra_env={"ASS_PASSWORD": "x"},
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr


def test_missing_driver_is_a_clear_error(user: Sandbox, rig: Rig) -> None:
    result = user.run(
        first_login(
            user, rig, "--username", "aws_user", "--no-prompt", "--driver-path", "/nonexistent/cd"
        ),
        extra_env={"ASS_PASSWORD": "aws_user"},
    )
    assert result.returncode == 2  # a wrong --driver-path is bad input
    assert "/nonexistent/cd" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_browser_under_xvfb(user: Sandbox, rig: Rig, xvfb: str) -> None:
    result = user.run(
        first_login(user, rig, "--username", "aws_user", "--show-browser", "--no-prompt"),
        extra_env={"ASS_PASSWORD": "aws_user"},
    )
    assert result.returncode == 0, result.stderr
    assert "(headless)" not in result.stderr
    assert role_of(user) == rig.role_user_arn


def test_use_browser_person_types_with_xdotool(user: Sandbox, rig: Rig, xvfb: str) -> None:
    tool = user.start(first_login(user, rig, "--use-browser", "--timeout", "90"))
    try:
        window = xdotool(xvfb, "search", "--sync", "--onlyvisible", "--name", "Sign in to")
        window = window.split()[0]
        xdotool(xvfb, "windowfocus", "--sync", window)  # no window manager: focus directly
        time.sleep(1.0)  # let the page finish rendering
        # As a person would: click into the page (not the address bar), Tab to the first
        # field (the username on Keycloak's login page), type, Tab, type, Enter.
        xdotool(xvfb, "mousemove", "--window", window, "20", "400", "click", "1")
        xdotool(xvfb, "key", "Tab")
        xdotool(xvfb, "type", "--delay", "20", "aws_user")
        xdotool(xvfb, "key", "Tab")
        xdotool(xvfb, "type", "--delay", "20", "aws_user")
        xdotool(xvfb, "key", "Return")
        _, err = tool.communicate(timeout=90)
    finally:
        if tool.poll() is None:  # let it clean up its browser as Ctrl-C would
            tool.send_signal(signal.SIGINT)
            tool.wait(30)
    assert tool.returncode == 0, err
    assert "Password for" not in err  # nothing asked in the terminal
    assert role_of(user) == rig.role_user_arn


def test_ctrl_c_during_sign_in_exits_130_and_cleans_up(user: Sandbox, rig: Rig) -> None:
    tool = user.start(first_login(user, rig, "--username", "aws_mfa"))
    assert tool.stdin is not None and tool.stderr is not None
    tool.stdin.write("aws_mfa\n")
    tool.stdin.flush()
    # Wait until the browser has reached the MFA step and the tool asks for the code.
    deadline = time.monotonic() + 60
    seen = ""
    while "MFA code" not in seen and time.monotonic() < deadline:
        seen += tool.stderr.read(1)
    assert "MFA code" in seen
    assert leftovers(user), "the browser should be running while the tool waits"
    tool.send_signal(signal.SIGINT)
    _, err = tool.communicate(timeout=30)
    assert tool.returncode == 130, seen + err
    assert "interrupted" in err.lower()
    assert "Traceback" not in err


def test_roles_lists_grants_and_writes_nothing(user: Sandbox, rig: Rig) -> None:
    result = user.run(
        [
            "roles",
            "--idp-nickname",
            NICK,
            "--idp-url",
            rig.idp_login_url,
            "--username",
            "aws_admin",
            "--no-prompt",
        ],
        extra_env={"ASS_PASSWORD": "aws_admin"},
    )
    assert result.returncode == 0, result.stderr
    assert "Role.Admin" in result.stdout and "Role.User" in result.stdout
    assert "Account 000000000000:" in result.stdout
    assert not user.credentials_file.exists()


def test_debug_log_of_a_browser_sign_in_holds_only_our_lines(user: Sandbox, rig: Rig) -> None:
    result = user.run(
        first_login(user, rig, "--username", "aws_user", "--no-prompt", "--log-level", "DEBUG"),
        extra_env={"ASS_PASSWORD": "aws_user"},
    )
    assert result.returncode == 0, result.stderr
    log_lines = [line for line in result.stderr.splitlines() if " DEBUG " in line]
    assert log_lines, "DEBUG lines expected"
    loggers = {line.split(" DEBUG ", 1)[1].split(":", 1)[0] for line in log_lines}
    assert all(name.startswith("awscli_saml_sso") for name in loggers), loggers
    assert "PHNhbWxwOlJlc3BvbnNl" not in result.stderr  # base64 of "<samlp:Response"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(user.credentials_file)
    assert parser["saml"]["aws_secret_access_key"] not in result.stderr


def test_another_user_gets_a_fresh_browser_session(user: Sandbox, rig: Rig) -> None:
    first = user.run(
        first_login(user, rig, "--username", "aws_user", "--no-prompt"),
        extra_env={"ASS_PASSWORD": "aws_user"},
    )
    assert first.returncode == 0, first.stderr
    second = user.run(
        [
            "--idp-nickname",
            NICK,
            "--username",
            "aws_admin",
            "--no-prompt",
            "--force",
            "--role-arn",
            rig.role_admin_arn,
        ],
        extra_env={"ASS_PASSWORD": "aws_admin"},
    )
    assert second.returncode == 0, second.stderr
    assert "instead of aws_user" in second.stderr
    assert role_of(user) == rig.role_admin_arn
