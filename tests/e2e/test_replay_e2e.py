"""Session replay against the rig's Keycloak: the installed CLI, a real keyring, a real
Chromium for the first sign-in and for every fallback.

"No browser" is checked two ways: the run's own timing spans (ASS_TIMINGS) hold a replay and
no browser start, and the run is given a --driver-path that does not exist, which any browser
start would have refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from support.rig import Rig
from support.sandbox import Sandbox, assert_nothing_left

pytestmark = [pytest.mark.rig, pytest.mark.browser]

NICK = "kc"
NO_DRIVER = ["--driver-path", "/nonexistent/chromedriver"]


@pytest.fixture
def user(sandbox: Sandbox, rig: Rig) -> Iterator[Sandbox]:
    sandbox.env["ASS_ENDPOINT_URL"] = rig.endpoint_url
    yield sandbox
    assert_nothing_left(sandbox)


def spans(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        names += [span[0] for span in json.loads(line)["spans"]]
    path.unlink()
    return names


def sign_in(user: Sandbox, tmp_path: Path, *args: str, stdin: str = "") -> tuple[str, list[str]]:
    timings = tmp_path / "spans.jsonl"
    result = user.run(
        ["--idp-nickname", NICK, "--force", *args],
        stdin=stdin,
        extra_env={"ASS_TIMINGS": str(timings)},
    )
    assert result.returncode == 0, result.stderr
    return result.stderr, spans(timings) if timings.exists() else []


def first(user: Sandbox, rig: Rig, tmp_path: Path, username: str, stdin: str) -> None:
    err, names = sign_in(
        user, tmp_path, "--idp-url", rig.idp_login_url, "--username", username, stdin=stdin
    )
    assert "browser start" in names and "keep session" in names, err
    # Kept as a secret: in the keyring here (the sandbox has one), no file.
    assert not (user.config_dir / "sessions" / f"{NICK}.json").exists()


def test_replay_while_the_session_lives_then_browser_after_logout(
    user: Sandbox, rig: Rig, tmp_path: Path
) -> None:
    first(user, rig, tmp_path, "aws_user", "aws_user\n")

    err, names = sign_in(user, tmp_path, "--use-stored", *NO_DRIVER)
    assert "replay" in names and "browser start" not in names
    assert "open session (no browser needed)" in err
    assert "[saml]" in user.credentials_file.read_text()

    # Under --no-replay the browser is used (and the missing driver is reported).
    refused = user.run(["--idp-nickname", NICK, "--force", "--no-replay", *NO_DRIVER])
    assert refused.returncode != 0 and "/nonexistent/chromedriver" in refused.stderr

    # The session ended at the IdP: the replay finds a login page, the browser signs in.
    rig.log_out("aws_user")
    err, names = sign_in(user, tmp_path, "--use-stored")
    assert "replay" in names and "browser start" in names, err
    err, names = sign_in(user, tmp_path, "--use-stored", *NO_DRIVER)
    assert "browser start" not in names, err


def test_a_realm_that_asks_for_otp_again_falls_back_to_the_browser(
    user: Sandbox, rig: Rig, tmp_path: Path
) -> None:
    totp = pyotp.TOTP(rig.totp_secret_b32)
    first(user, rig, tmp_path, "aws_mfa", f"aws_mfa\n{totp.now()}\n")
    _, names = sign_in(user, tmp_path, "--use-stored", *NO_DRIVER)
    assert "browser start" not in names

    rig.log_out("aws_mfa")
    # A fresh code: Keycloak refuses a code twice, and accepts the next period's
    # (otpPolicyLookAheadWindow 1), so nobody waits for the clock.
    err, names = sign_in(user, tmp_path, "--use-stored", "--mfa-code", totp.at(time.time() + 30))
    assert "replay" in names and "browser start" in names, err
