"""Every IdP of the rig, through the CLI as a real process: Keycloak username-first, LemonLDAP::NG.

For each: a headless sign-in, a TOTP sign-in, a wrong password (the IdP's own message, the
password submitted exactly once), and a user without roles (exit 5). The main Keycloak
realm has the same tests in test_signin_e2e.py.
"""

from __future__ import annotations

import configparser
import dataclasses
import subprocess
from collections.abc import Iterator

import pyotp
import pytest
import rig as keycloak_rig
from support.rig import Rig
from support.sandbox import Sandbox, assert_nothing_left

pytestmark = [pytest.mark.rig, pytest.mark.browser]

IDPS = ["keycloak-idfirst", "lemonldap"]
# What each IdP says about a wrong password, word for word.
WRONG_PASSWORD = {
    "keycloak-idfirst": "Invalid password.",
    "lemonldap": "Wrong credentials",
}


@pytest.fixture(params=IDPS)
def idp(request: pytest.FixtureRequest, rig: Rig) -> str:
    name = str(request.param)
    if name not in rig.idp_urls:
        pytest.skip(f"the rig runs without {name} on this machine (see `rig.py status`)")
    return name


@pytest.fixture
def user(sandbox: Sandbox, rig: Rig) -> Iterator[Sandbox]:
    sandbox.env["ASS_ENDPOINT_URL"] = rig.endpoint_url
    yield sandbox
    assert_nothing_left(sandbox)


def login(rig: Rig, idp: str, *extra: str) -> list[str]:
    return ["--idp-nickname", idp, "--idp-url", rig.idp_urls[idp], *extra]


def keys_of(user: Sandbox, profile: str = "saml") -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(user.credentials_file)
    return parser[profile]


def bad_passwords(rig: Rig, idp: str, username: str) -> int:
    """How many wrong passwords the IdP itself recorded for ``username``."""
    if idp == "lemonldap":
        log = (keycloak_rig.run_dir() / "lemonldap.log").read_text(errors="replace")
        return log.count(f"Bad password for {username}\n")
    realm = rig.idp_urls[idp].split("/realms/")[1].split("/")[0]
    return dataclasses.replace(rig, realm=realm).count_logins(username, "LOGIN_ERROR")


def test_headless_sign_in(user: Sandbox, rig: Rig, idp: str) -> None:
    result = user.run(login(rig, idp), stdin="aws_user\naws_user\n")
    assert result.returncode == 0, result.stderr
    keys = keys_of(user)
    assert keys["x_role_arn"] == rig.role_user_arn
    assert keys["x_principal_arn"] == rig.idp_provider_arns[idp]
    listed = subprocess.run(
        [
            *("aws", "--profile", "saml", "--endpoint-url", rig.endpoint_url),
            *("--region", "us-east-1", "s3", "ls", f"s3://{rig.bucket}"),
        ],
        env=user.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr


def test_totp(user: Sandbox, rig: Rig, idp: str) -> None:
    code = pyotp.TOTP(rig.totp_secret_b32).now()
    result = user.run(login(rig, idp, "--username", "aws_mfa"), stdin=f"aws_mfa\n{code}\n")
    assert result.returncode == 0, result.stderr
    assert "MFA code:" in result.stderr
    assert keys_of(user)["x_role_arn"] == rig.role_user_arn


def test_wrong_password_is_submitted_once_and_the_idp_says_why(
    user: Sandbox, rig: Rig, idp: str
) -> None:
    before = bad_passwords(rig, idp, "aws_user")
    result = user.run(
        login(rig, idp, "--username", "aws_user", "--no-prompt"),
        extra_env={"ASS_PASSWORD": "wrong"},
    )
    assert result.returncode == 3, result.stderr
    assert WRONG_PASSWORD[idp] in result.stderr
    assert bad_passwords(rig, idp, "aws_user") == before + 1
    assert not user.credentials_file.exists()


def test_user_without_roles_exits_5(user: Sandbox, rig: Rig, idp: str) -> None:
    result = user.run(
        login(rig, idp, "--username", "aws_void", "--no-prompt"),
        extra_env={"ASS_PASSWORD": "aws_void"},
    )
    assert result.returncode == 5, result.stderr
    assert "this identity has no AWS role" in result.stderr


def test_several_roles_in_one_attribute(user: Sandbox, rig: Rig) -> None:
    # LemonLDAP::NG sends both of aws_admin's roles as values of one Role attribute.
    if "lemonldap" not in rig.idp_urls:
        pytest.skip("the rig runs without LemonLDAP::NG on this machine")
    result = user.run(
        login(rig, "lemonldap", "--username", "aws_admin"), stdin="aws_admin\nRole.Admin\n"
    )
    assert result.returncode == 0, result.stderr
    assert "Please choose the role" in result.stderr
    assert keys_of(user)["x_role_arn"] == rig.role_admin_arn
