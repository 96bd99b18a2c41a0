"""Stored identity providers, the OS keyring and --clean, through the CLI (no IdP needed)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest
from support.sandbox import Sandbox


def keyring_call(sandbox: Sandbox, code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import keyring\n" + code],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


def test_add_list_remove_and_clean(sandbox: Sandbox) -> None:
    added = sandbox.run(["idp", "add", "corp", "https://idp.example.com/sso", "--username", "jd"])
    assert added.returncode == 0, added.stderr
    listed = sandbox.run(["idp", "list"])
    assert listed.stdout.strip() == "corp\thttps://idp.example.com/sso\tuser=jd"
    idps = sandbox.config_dir / "idps.json"
    assert stat.S_IMODE(idps.stat().st_mode) == 0o600
    assert stat.S_IMODE(sandbox.config_dir.stat().st_mode) == 0o700
    assert json.loads(idps.read_text()) == [
        {
            "nickname": "corp",
            "url": "https://idp.example.com/sso",
            "username": "jd",
            "browser": None,
            "origins": [],
            "issuer": None,
        }
    ]

    keyring_call(sandbox, "keyring.set_password('awscli_saml_sso:corp', 'jd', 'pw')")
    removed = sandbox.run(["idp", "remove", "corp"])
    assert removed.returncode == 0, removed.stderr
    assert (
        keyring_call(sandbox, "print(keyring.get_password('awscli_saml_sso:corp', 'jd'))") == "None"
    )
    assert sandbox.run(["idp", "remove", "corp"]).returncode == 2

    sandbox.run(["idp", "add", "other", "https://idp.example.com/b", "--username", "x"])
    keyring_call(sandbox, "keyring.set_password('awscli_saml_sso:other', 'x', 'pw')")
    refused = sandbox.run(["--clean"], stdin="n\n")
    assert refused.returncode == 0 and sandbox.config_dir.exists()
    cleaned = sandbox.run(["--clean", "--yes"])
    assert cleaned.returncode == 0, cleaned.stderr
    assert not sandbox.config_dir.exists()
    assert (
        keyring_call(sandbox, "print(keyring.get_password('awscli_saml_sso:other', 'x'))") == "None"
    )


def test_bad_nickname_and_url_are_usage_errors(sandbox: Sandbox) -> None:
    bad_name = sandbox.run(["idp", "add", "../etc", "https://idp.example.com/"])
    assert bad_name.returncode == 2 and "nickname" in bad_name.stderr
    bad_url = sandbox.run(["idp", "add", "corp", "ftp://idp.example.com/"])
    assert bad_url.returncode == 2 and "not an http(s) URL" in bad_url.stderr


def test_corrupt_idps_file_is_a_local_file_error(sandbox: Sandbox) -> None:
    sandbox.config_dir.mkdir(mode=0o700)
    (sandbox.config_dir / "idps.json").write_text("{not json")
    result = sandbox.run(["idp", "list"])
    assert result.returncode == 7
    assert "is corrupt" in result.stderr and "Traceback" not in result.stderr


def test_no_keyring_backend_is_said_with_the_reason(sandbox: Sandbox) -> None:
    # With no Secret Service on the bus, keyring has no usable back end.
    code = (
        "from awscli_saml_sso.idp import passwords\n"
        "try:\n"
        "    passwords.get_password('corp', 'jd')\n"
        "except passwords.KeyringUnavailable as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**sandbox.env, "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "keyring" in result.stdout.lower() and result.stdout.strip()


def test_a_profile_still_held_is_reported_not_silently_kept(sandbox: Sandbox) -> None:
    # On Windows a browser that is still closing holds its profile's files; chattr +i makes
    # a file undeletable here in the same way (even for root).
    assert sandbox.run(["idp", "add", "corp", "https://idp.example.com/sso"]).returncode == 0
    held = sandbox.config_dir / "browser" / "corp" / "Default" / "Cookies"
    held.parent.mkdir(parents=True)
    held.write_text("session")
    if subprocess.run(["chattr", "+i", str(held)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        removed = sandbox.run(["idp", "remove", "corp"])
        cleaned = sandbox.run(["--clean", "--yes"])
    finally:
        subprocess.run(["chattr", "-i", str(held)], check=True)
    assert removed.returncode == 7, removed.stderr
    assert f"Cannot remove {held.parent}: 1 file(s) are still in it" in removed.stderr
    assert "Traceback" not in removed.stderr
    assert cleaned.returncode == 7 and "Cannot remove" in cleaned.stderr
    assert sandbox.run(["idp", "list"]).stdout.strip() == ""
