"""CLI behaviour that needs no server: help, version, usage errors, fast paths, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from awscli_saml_sso import __version__
from awscli_saml_sso.cli import cli, main

HEAVY = ("selenium", "mitmproxy", "boto3", "botocore", "keyring")


def run_main(
    args: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process, printing which heavy modules it imported on stderr last."""
    code = (
        "import sys, atexit\n"
        f"heavy = {HEAVY!r}\n"
        "atexit.register(lambda: print('HEAVY=' + ','.join(m for m in heavy if m in sys.modules),"
        " file=sys.stderr))\n"
        "from awscli_saml_sso.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose AWS files and config dir live in tmp_path, never the real home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ASS_"))}
    env.update(
        HOME=str(tmp_path),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws" / "credentials"),
        AWS_CONFIG_FILE=str(tmp_path / "aws" / "config"),
        ASS_CONFIG_DIR=str(tmp_path / "ass"),
    )
    return env


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_stay_light(args: list[str], home: dict[str, str]) -> None:
    result = run_main(args, home)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "HEAVY="
    if args == ["--version"]:
        assert __version__ in result.stdout
    else:
        for option in ("--show-browser", "--use-browser", "--use-stored", "--role-selection"):
            assert option in result.stdout


def test_unknown_option_is_usage_error() -> None:
    result = CliRunner().invoke(cli, ["--no-such-option"])
    assert result.exit_code == 2


def test_bad_saml_file_exits_4_with_one_sentence(home: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "response.txt"
    bad.write_text("this is not a SAML response\n")
    result = run_main(["--saml-response-file", str(bad), "--no-prompt"], home)
    assert result.returncode == 4
    lines = [line for line in result.stderr.splitlines() if not line.startswith("HEAVY=")]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr


def test_missing_saml_file_is_usage_error(home: dict[str, str], tmp_path: Path) -> None:
    result = run_main(["--saml-response-file", str(tmp_path / "nope.xml")], home)
    assert result.returncode == 2
    assert "cannot read the SAML response file" in result.stderr
    assert "No such file or directory" in result.stderr and "Errno" not in result.stderr


def test_bad_profile_name_fails_before_any_sign_in(home: dict[str, str], tmp_path: Path) -> None:
    # The response file does not even exist: the profile name is refused first.
    args = ["--saml-response-file", str(tmp_path / "nope.xml"), "--profile", "bad]name"]
    result = run_main(args, home)
    assert result.returncode == 2
    assert "bad]name" in result.stderr
    spaced_args = ["--saml-response-file", "x", "--profile", "a b", "--region", "eu-west-1"]
    spaced = run_main(spaced_args, home)
    assert spaced.returncode == 2 and "config file" in spaced.stderr
    assert not Path(home["AWS_SHARED_CREDENTIALS_FILE"]).exists()


def test_clean_removes_only_what_the_tool_created(home: dict[str, str]) -> None:
    config = Path(home["ASS_CONFIG_DIR"])
    (config / "cache").mkdir(parents=True, mode=0o700)
    (config / "idps.json").write_text("[]")
    (config / "someone-elses-file").write_text("keep me")
    result = run_main(["--clean", "--yes"], home)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in config.iterdir()) == ["someone-elses-file"]


def test_closed_stdin_during_prompt_is_usage_error(home: dict[str, str]) -> None:
    # No IdP stored: the tool asks for a nickname; stdin is empty.
    result = run_main([], home, stdin="")
    assert result.returncode == 2, result.stderr
    assert "standard input closed" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_nickname_under_no_prompt(home: dict[str, str]) -> None:
    result = run_main(["--idp-nickname", "nope", "--no-prompt"], home)
    assert result.returncode == 2
    assert "no identity provider is stored under the nickname 'nope'" in result.stderr


def test_plain_http_idp_url_is_refused(home: dict[str, str]) -> None:
    result = run_main(
        ["--idp-nickname", "corp", "--idp-url", "http://idp.example.com/sso", "--no-prompt"], home
    )
    assert result.returncode == 2
    assert "plain http" in result.stderr


def test_main_maps_keyboard_interrupt_to_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "main", interrupted)
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 130


def test_cached_credential_process_is_light_and_prints_json(home: dict[str, str]) -> None:
    from datetime import datetime, timedelta, timezone

    from awscli_saml_sso.keys import save
    from awscli_saml_sso.model import Keys
    from awscli_saml_sso.paths import cache_path

    role = "arn:aws:iam::000000000000:role/Role.User"
    keys = Keys("ASIAEXAMPLE", "secret", "token", datetime.now(timezone.utc) + timedelta(hours=1))
    save(cache_path(Path(home["ASS_CONFIG_DIR"]) / "cache", "corp", role, None), keys)
    result = run_main(["credential-process", "--idp-nickname", "corp", "--role-arn", role], home)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "HEAVY="
    document = json.loads(result.stdout)
    assert document == keys.process_json()


def test_still_valid_profile_is_a_light_no_op(home: dict[str, str]) -> None:
    from datetime import datetime, timedelta, timezone

    expires = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    credentials = Path(home["AWS_SHARED_CREDENTIALS_FILE"])
    credentials.parent.mkdir(mode=0o700)
    credentials.write_text(
        "[saml]\naws_access_key_id = A\naws_secret_access_key = B\naws_session_token = C\n"
        f"x_security_token_expires = {expires}\n"
        "x_role_arn = arn:aws:iam::000000000000:role/Role.User\n"
    )
    credentials.chmod(0o600)  # as the AWS CLI leaves it (an open one is fixed with a warning)
    result = run_main(["--idp-nickname", "corp", "--no-prompt"], home)
    assert result.returncode == 0, result.stderr
    assert "still holds valid credentials" in result.stdout
    assert result.stderr.strip() == "HEAVY="
    other_role = ["--role-arn", "arn:aws:iam::000000000000:role/Role.Admin"]
    different = run_main(["--idp-nickname", "corp", "--no-prompt", *other_role], home)
    assert different.returncode == 2  # not valid for that role: it goes on to sign in (no IdP)
    assert "still holds" not in different.stdout


def test_shell_completion_offers_commands_and_stored_nicknames(home: dict[str, str]) -> None:
    config = Path(home["ASS_CONFIG_DIR"])
    config.mkdir(mode=0o700)
    (config / "idps.json").write_text(
        '[{"nickname": "corp", "url": "https://idp.example.com/", "username": null,'
        ' "browser": null}]'
    )
    env = {**home, "_AWSCLI_SAML_SSO_COMPLETE": "bash_complete", "COMP_CWORD": "2"}
    env["COMP_WORDS"] = "awscli_saml_sso --idp-nickname c"
    nicknames = run_main([], env)
    assert "plain,corp" in nicknames.stdout
    env.update(COMP_WORDS="awscli_saml_sso cred", COMP_CWORD="1")
    assert "plain,credential-process" in run_main([], env).stdout
