"""Platform rules that can be checked on any system: how botocore will split our
credential_process line on Windows and elsewhere, and the keyring limits per system."""

from __future__ import annotations

import pytest
from botocore.compat import compat_shell_split

from awscli_saml_sso.aws.credential_process import command_line
from awscli_saml_sso.idp.passwords import (
    KEYCHAIN_DIALOG_TIMEOUT,
    KEYRING_TIMEOUT,
    keyring_timeout,
    too_long_to_store,
)

WORDS = {
    "win32": [
        r"C:\Users\Jane Doe\AppData\Roaming\Python\Scripts\awscli_saml_sso.exe",
        "credential-process",
        "--idp-nickname",
        "corp",
        "--role-arn",
        "arn:aws:iam::123456789012:role/Dev Ops",
    ],
    "linux": [
        "/home/Jane Doe/.local/bin/awscli_saml_sso",
        "credential-process",
        "--idp-nickname",
        "corp's",
        "--role-arn",
        "arn:aws:iam::123456789012:role/Dev",
    ],
}
WORDS["darwin"] = [w.replace("/home/", "/Users/") for w in WORDS["linux"]]


@pytest.mark.parametrize("platform", sorted(WORDS))
def test_credential_process_line_round_trips_through_botocore(platform: str) -> None:
    # botocore's own splitter, with the rules it applies on that platform.
    words = WORDS[platform]
    assert compat_shell_split(command_line(words, platform), platform) == words


def test_posix_quoting_would_break_on_windows() -> None:
    # Why the line differs per system: single quotes mean nothing to Windows' rules.
    import shlex

    words = WORDS["win32"]
    assert compat_shell_split(shlex.join(words), "win32") != words


def test_windows_credential_locker_limit() -> None:
    assert too_long_to_store("x" * 1280, "win32") is None  # 2,560 bytes in UTF-16
    reason = too_long_to_store("x" * 1281, "win32")
    assert reason == (
        "the Windows Credential Locker holds at most 2560 bytes per secret and this "
        "password takes 2562"
    )
    assert too_long_to_store("x" * 5000, "linux") is None
    assert too_long_to_store("x" * 5000, "darwin") is None


def test_keychain_gets_time_for_its_dialog() -> None:
    assert keyring_timeout("darwin") == KEYCHAIN_DIALOG_TIMEOUT > KEYRING_TIMEOUT
    assert keyring_timeout("linux") == keyring_timeout("win32") == KEYRING_TIMEOUT
