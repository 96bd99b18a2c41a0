"""The console script's quick answers (awscli_saml_sso.main): a cached credential-process call
and --version are answered with the standard library alone, and exactly as the command line
would answer them; whenever the answer is not certain, the command line decides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from awscli_saml_sso.keys import save
from awscli_saml_sso.main import quick_answer
from awscli_saml_sso.model import Keys
from awscli_saml_sso.paths import cache_path

ROLE = "arn:aws:iam::000000000000:role/Role.User"
CHAINED = "arn:aws:iam::000000000000:role/Role.Chained"
SCRIPT = Path(sys.executable).with_name("awscli_saml_sso")
#: What a quick answer may import beyond the standard library: the light modules.
OWN_MODULES = {
    f"awscli_saml_sso{name}"
    for name in ("", ".main", ".paths", ".timestamps", ".errors", ".text", ".files", ".aws")
} | {"awscli_saml_sso.aws.config_files", "awscli_saml_sso.aws.validity"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment whose config dir lives in tmp_path, with an IdP stored as `corp`."""
    values = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ASS_"))}
    values.update(
        HOME=str(tmp_path),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws" / "credentials"),
        AWS_CONFIG_FILE=str(tmp_path / "aws" / "config"),
        ASS_CONFIG_DIR=str(tmp_path / "ass"),
    )
    config = tmp_path / "ass"
    config.mkdir(mode=0o700)
    idps = [{"nickname": "corp", "url": "https://idp.example.com/sso", "username": "alice"}]
    (config / "idps.json").write_text(json.dumps(idps))
    (config / "idps.json").chmod(0o600)
    return values


def cache(env: dict[str, str], key: dict[str, object] | None = None, *, hours: float = 1) -> Keys:
    """Keys cached for `corp` as a refresh with these key parts would have written them."""
    keys = Keys("ASIAQUICK", "secret", "token", datetime.now(timezone.utc) + timedelta(hours=hours))
    parts = {"username": "alice", "endpoint_url": None, "chain": (), **(key or {})}
    path = cache_path(
        Path(env["ASS_CONFIG_DIR"]) / "cache",
        "corp",
        ROLE,
        parts["endpoint_url"] if isinstance(parts["endpoint_url"], str) else None,
        username=str(parts["username"]),
        idp_url="https://idp.example.com/sso",
        chain=tuple(str(part) for part in parts["chain"]),  # type: ignore[attr-defined]
    )
    save(path, keys, issued=keys.expiration - timedelta(hours=hours + 1))
    return keys


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def full_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command line itself, without the quick path."""
    code = "import sys\nfrom awscli_saml_sso.cli import main\nmain(sys.argv[1:])\n"
    return run([sys.executable, "-c", code, *args], env)


BASE = ["credential-process", "--idp-nickname", "corp", "--role-arn", ROLE]


@pytest.mark.parametrize(
    ("args", "extra_env", "key"),
    [
        ([], {}, {}),
        (["--idp-nickname=corp", "--role-arn=" + ROLE], {}, {}),
        (["--no-replay", "--use-stored", "--profile", "x"], {}, {}),
        (
            ["--endpoint-url", "http://localhost:4566"],
            {},
            {"endpoint_url": "http://localhost:4566"},
        ),
        (
            [],
            {"ASS_ENDPOINT_URL": "http://localhost:4566"},
            {"endpoint_url": "http://localhost:4566"},
        ),
        (["--username", "bob"], {}, {"username": "bob"}),
        ([], {"ASS_USERNAME": "bob", "ASS_LOG_LEVEL": "warning"}, {"username": "bob"}),
        (["--chain-role-arn", CHAINED], {}, {"chain": (CHAINED, "")}),
        (["--chain-role-arn", CHAINED, "--external-id", "x-1"], {}, {"chain": (CHAINED, "x-1")}),
        (["--min-remaining", "60"], {}, {}),
    ],
)
def test_a_cached_call_is_answered_as_the_command_line_answers_it(
    env: dict[str, str], args: list[str], extra_env: dict[str, str], key: dict[str, object]
) -> None:
    env.update(extra_env)
    keys = cache(env, key)
    words = BASE[:1] + args if args[:1] == ["--idp-nickname=corp"] else BASE + args
    answer = quick_answer(words, env)
    assert answer is not None
    assert json.loads(answer) == keys.process_json()
    assert answer == full_cli(words, env).stdout  # the same bytes


def test_the_quick_answer_imports_no_more_than_it_needs(env: dict[str, str]) -> None:
    keys = cache(env)
    code = (
        "import sys, runpy\n"
        "before = set(sys.modules)\n"
        "sys.argv = ['awscli_saml_sso', *sys.argv[1:]]\n"
        "from awscli_saml_sso.main import main\n"
        "main()\n"
        "own = sorted(m for m in sys.modules if m.startswith('awscli_saml_sso'))\n"
        "other = sorted(m.split('.')[0] for m in set(sys.modules) - before\n"
        "               if not m.startswith('awscli_saml_sso') and m.split('.')[0] not in\n"
        "               sys.stdlib_module_names and not m.startswith('_'))\n"
        "print('OWN=' + ','.join(own), file=sys.stderr)\n"
        "print('OTHER=' + ','.join(other), file=sys.stderr)\n"
    )
    result = run([sys.executable, "-c", code, *BASE], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == keys.process_json()
    own, other = result.stderr.strip().splitlines()[-2:]
    assert set(own.removeprefix("OWN=").split(",")) == OWN_MODULES
    assert other == "OTHER="  # no click, no third-party library at all


@pytest.mark.parametrize(
    ("args", "extra_env"),
    [
        (["--idp-nickname", "other"], {}),  # nothing cached for it
        (["--browser", "firefox"], {}),  # an option this path does not know
        (["--min-remaining", "-1"], {}),  # a usage error, worded by the command line
        (["--min-remaining", "5000"], {}),  # stale for this window
        (["--external-id", "x-1"], {}),  # without --chain-role-arn: a usage error
        (["--role-arn"], {}),  # a value is missing
        (["--profile", "--no-replay"], {}),  # an option where a value should be
        (["--idp-nickname", "corp"], {}),  # given twice
        ([], {"ASS_LOG_LEVEL": "DEBUG"}),  # messages were asked for
        ([], {"ASS_USERNAME": "bob"}),  # another user's keys are not these
    ],
)
def test_anything_uncertain_goes_to_the_command_line(
    env: dict[str, str], args: list[str], extra_env: dict[str, str]
) -> None:
    env.update(extra_env)
    cache(env)
    assert quick_answer(BASE + args, env) is None


def test_a_bad_nickname_never_names_a_file(env: dict[str, str]) -> None:
    cache(env)
    for nickname in ("../corp", "corp\n", "", ".corp"):
        words = ["credential-process", "--idp-nickname", nickname, "--role-arn", ROLE]
        assert quick_answer(words, env) is None


def test_a_cache_open_to_others_is_left_to_the_command_line(env: dict[str, str]) -> None:
    """The command line tightens the modes and says so; the quick path never skips that."""
    cache(env)
    idps = Path(env["ASS_CONFIG_DIR"]) / "idps.json"
    idps.chmod(0o644)
    assert quick_answer(BASE, env) is None
    idps.chmod(0o600)
    cache_dir = Path(env["ASS_CONFIG_DIR"]) / "cache"
    (entry,) = cache_dir.iterdir()
    entry.chmod(0o644)
    assert quick_answer(BASE, env) is None
    entry.chmod(0o600)
    cache_dir.chmod(0o755)
    assert quick_answer(BASE, env) is None
    cache_dir.chmod(0o700)
    assert quick_answer(BASE, env) is not None


def test_a_malformed_or_expiring_cache_is_left_to_the_command_line(env: dict[str, str]) -> None:
    cache(env, hours=0.1)  # 6 minutes left: inside the default 15-minute window
    assert quick_answer(BASE, env) is None
    cache(env)
    (entry,) = (Path(env["ASS_CONFIG_DIR"]) / "cache").iterdir()
    entry.write_text('{"AccessKeyId": 1}')
    assert quick_answer(BASE, env) is None


def test_version_is_answered_as_click_answers_it(env: dict[str, str]) -> None:
    quick = run([str(SCRIPT), "--version"], env)
    assert quick.returncode == 0
    assert quick.stdout == full_cli(["--version"], env).stdout
    assert quick_answer(["--version", "--help"], env) is None


def test_the_script_and_python_m_take_the_quick_path(env: dict[str, str]) -> None:
    keys = cache(env)
    for command in ([str(SCRIPT)], [sys.executable, "-m", "awscli_saml_sso"]):
        result = run([*command, *BASE], env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == keys.process_json()
    missing = run([str(SCRIPT), "credential-process", "--idp-nickname", "corp"], env)
    assert missing.returncode == 2  # the command line's usage error, one sentence
    assert missing.stderr.strip() == "Error: --idp-nickname and --role-arn are both needed"


# -- "still valid": a sign-in run whose profile is kept ------------------------------------------
def write_profile(env: dict[str, str], *, minutes: int = 60, **values: str) -> None:
    """A saml profile as a sign-in through `corp` against the emulator wrote it."""
    expires = (datetime.now(timezone.utc) + timedelta(minutes=minutes)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    fields = {
        "aws_access_key_id": "A",
        "aws_secret_access_key": "B",
        "aws_session_token": "C",
        "x_security_token_expires": expires,
        "x_role_arn": ROLE,
        "x_idp_url": "https://idp.example.com/sso",
        "x_sts_endpoint": "http://localhost:4566",
        **values,
    }
    credentials = Path(env["AWS_SHARED_CREDENTIALS_FILE"])
    credentials.parent.mkdir(mode=0o700, exist_ok=True)
    body = "".join(f"{key} = {value}\n" for key, value in fields.items())
    credentials.write_text(f"[other]\naws_access_key_id = X\n\n[saml]\n{body}")
    credentials.chmod(0o600)


RUN = ["--use-stored", "--idp-nickname", "corp", "--endpoint-url", "http://localhost:4566"]


@pytest.mark.parametrize(
    "args",
    [
        RUN,
        [*RUN, "--role-arn", ROLE, "--no-prompt"],
        ["--idp-nickname=corp", "--endpoint-url=http://localhost:4566", "--min-remaining", "60"],
        [*RUN, "--idp-url", "https://idp.example.com/sso", "--username", "bob"],
        [*RUN, "--region", "eu-west-1", "--profile", "saml"],
    ],
)
def test_a_still_valid_run_is_answered_as_the_command_line_answers_it(
    env: dict[str, str], args: list[str]
) -> None:
    write_profile(env)
    answer = quick_answer(args, env)
    assert answer is not None and "still holds valid credentials" in answer
    assert answer == full_cli(args, env).stdout


def test_a_still_valid_run_imports_no_third_party_library(env: dict[str, str]) -> None:
    write_profile(env)
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "sys.argv = ['awscli_saml_sso', *sys.argv[1:]]\n"
        "from awscli_saml_sso.main import main\n"
        "main()\n"
        "other = sorted({m.split('.')[0] for m in set(sys.modules) - before\n"
        "               if not m.startswith(('awscli_saml_sso', '_'))}\n"
        "               - set(sys.stdlib_module_names))\n"
        "print('OTHER=' + ','.join(other), file=sys.stderr)\n"
        "print('CLI=' + str('awscli_saml_sso.cli' in sys.modules), file=sys.stderr)\n"
    )
    result = run([sys.executable, "-c", code, *RUN], env)
    assert result.returncode == 0, result.stderr
    assert "still holds valid credentials" in result.stdout
    assert result.stderr.strip().splitlines()[-2:] == ["OTHER=", "CLI=False"]


@pytest.mark.parametrize(
    ("args", "profile", "change"),
    [
        (RUN, {"minutes": 3}, None),  # inside the 5-minute window
        ([*RUN, "--role-arn", CHAINED], {}, None),  # another role
        (RUN[:3], {}, None),  # AWS's STS, not the emulator's keys
        (RUN, {"x_idp_url": "https://other.example.com/sso"}, None),  # another IdP
        ([*RUN, "--force"], {}, None),  # an option this path does not know
        ([*RUN, "--profile", "bad name"], {}, None),  # a usage error, worded by the CLI
        ([*RUN, "--idp-url", "https://other.example.com/sso"], {}, None),  # stored anew
        (["--idp-url", "https://idp.example.com/sso"], {}, None),  # needs --idp-nickname
        ([*RUN, "--region", "Europe"], {}, None),  # not a region name
        (RUN, {}, "open credentials"),  # the command line tightens it and says so
        (RUN, {}, "open config dir"),
        (RUN, {}, "refused password"),  # this run must sign in and ask for the password
        (RUN, {}, "corrupt idps.json"),
    ],
)
def test_anything_uncertain_about_a_run_goes_to_the_command_line(
    env: dict[str, str], args: list[str], profile: dict[str, object], change: str | None
) -> None:
    minutes = profile.pop("minutes", 60)
    write_profile(env, minutes=int(str(minutes)), **{k: str(v) for k, v in profile.items()})
    config = Path(env["ASS_CONFIG_DIR"])
    if change == "open credentials":
        Path(env["AWS_SHARED_CREDENTIALS_FILE"]).chmod(0o644)
    elif change == "open config dir":
        config.chmod(0o755)
    elif change == "refused password":
        (config / "cache").mkdir(mode=0o700)
        (config / "cache" / "corp.refresh-failed.json").write_text("{}")
        (config / "cache" / "corp.refresh-failed.json").chmod(0o600)
    elif change == "corrupt idps.json":
        (config / "idps.json").write_text("[{")
    assert quick_answer(args, env) is None
