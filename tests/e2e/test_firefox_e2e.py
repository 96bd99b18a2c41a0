"""Sign-ins with --browser firefox, end to end: the real CLI process, firefox-esr and
geckodriver, the rig's Keycloak and STS. After each test no process of the run is left.
"""

from __future__ import annotations

import configparser
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from support.rig import Rig
from support.sandbox import Sandbox, assert_nothing_left

pytestmark = [pytest.mark.rig, pytest.mark.browser]

NICK = "kc-firefox"


@pytest.fixture
def user(sandbox: Sandbox, rig: Rig) -> Iterator[Sandbox]:
    """A sandbox with the rig's STS endpoint; after the test, nothing of it may still run."""
    for program in ("firefox", "geckodriver"):
        if shutil.which(program, path=sandbox.env.get("PATH")) is None:
            pytest.skip(f"{program} is missing (see README: Firefox)")
    sandbox.env["ASS_ENDPOINT_URL"] = rig.endpoint_url
    yield sandbox
    assert_nothing_left(sandbox)


def login(rig: Rig, username: str, *extra: str) -> list[str]:
    return [
        *("--idp-nickname", NICK, "--idp-url", rig.idp_login_url),
        *("--browser", "firefox", "--username", username, *extra),
    ]


def role_of(user: Sandbox) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(user.credentials_file)
    return parser["saml"]["x_role_arn"]


def test_headless_sign_in_with_firefox(user: Sandbox, rig: Rig) -> None:
    result = user.run(login(rig, "aws_user", "--no-prompt"), extra_env={"ASS_PASSWORD": "aws_user"})
    assert result.returncode == 0, result.stderr
    assert role_of(user) == rig.role_user_arn
    (entry,) = json.loads((user.config_dir / "idps.json").read_text())
    assert entry["browser"] == "firefox"
    # Firefox kept its files in the tool's profile, nothing in the home directory.
    home = Path(user.env["HOME"])
    assert not [p for p in (".mozilla", ".cache", ".config") if (home / p).exists()]

    # Forced again, with no password to give: Keycloak's session, kept in the persistent
    # profile, signs in.
    forced = user.run(["--use-stored", "--idp-nickname", NICK, "--no-prompt", "--force"])
    assert forced.returncode == 0, forced.stderr
    assert role_of(user) == rig.role_user_arn


def test_visible_sign_in_with_firefox_under_xvfb(user: Sandbox, rig: Rig, xvfb: str) -> None:
    result = user.run(
        login(rig, "aws_user", "--show-browser", "--no-prompt"),
        extra_env={"ASS_PASSWORD": "aws_user"},
    )
    assert result.returncode == 0, result.stderr
    assert "(headless)" not in result.stderr
    assert role_of(user) == rig.role_user_arn


def test_totp_sign_in_with_firefox(user: Sandbox, rig: Rig) -> None:
    # The code is computed when the tool asks for it, as a person would: a slow browser start
    # must not leave it expired.
    tool = user.start(login(rig, "aws_mfa"))
    assert tool.stdin is not None and tool.stderr is not None
    stderr = tool.stderr
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(iter(lambda: stderr.read(1), "")))
    reader.start()
    try:
        tool.stdin.write("aws_mfa\n")
        tool.stdin.flush()
        deadline = time.monotonic() + 150
        while "MFA code:" not in "".join(said) and time.monotonic() < deadline:
            assert tool.poll() is None, "".join(said)
            time.sleep(0.2)
        tool.stdin.write(pyotp.TOTP(rig.totp_secret_b32).now() + "\n")
        tool.stdin.close()
        assert tool.wait(150) == 0, "".join(said)
    finally:
        tool.kill()
        tool.wait(10)
        reader.join(10)
    assert role_of(user) == rig.role_user_arn


def test_wrong_password_with_firefox_exits_3_after_one_submission(user: Sandbox, rig: Rig) -> None:
    before = rig.count_logins("aws_user", "LOGIN_ERROR")
    result = user.run(login(rig, "aws_user", "--no-prompt"), extra_env={"ASS_PASSWORD": "wrong"})
    assert result.returncode == 3, result.stderr
    assert "Invalid username or password." in result.stderr
    assert rig.count_logins("aws_user", "LOGIN_ERROR") == before + 1  # submitted once
    assert not user.credentials_file.exists()
    assert "Traceback" not in result.stderr
