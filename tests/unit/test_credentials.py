"""The AWS credentials/config writer on real files: nothing of the user's may be lost.

botocore itself is the judge of "the AWS CLI can read it": every file we write is read back
with botocore's own loader, and every file we refuse is one botocore refuses too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import botocore.configloader
import botocore.exceptions
import pytest

from awscli_saml_sso.aws import config_files as creds
from awscli_saml_sso.aws.config_files import (
    config_file,
    credentials_file,
    read_profile,
    write_config,
    write_credentials,
)
from awscli_saml_sso.errors import LocalFileError, StsError, UsageError
from awscli_saml_sso.model import Keys

DATA = Path(__file__).parent.parent / "data" / "aws"
FORK = multiprocessing.get_context("fork")
EXPIRES = datetime(2026, 11, 21, 11, 0, 0, tzinfo=timezone.utc)
PRINCIPAL = "arn:aws:iam::123456789012:saml-provider/keycloak"


def make(name: str, number: int) -> Keys:
    return Keys(
        access_key_id=f"ASIANEW{name.upper()}{number:04d}",
        secret_access_key=f"NEWSECRET/{name}+{number:04d}",
        session_token=f"NEWTOKEN//{name}=={number:04d}",
        expiration=EXPIRES,
        role_arn=f"arn:aws:iam::123456789012:role/{name}",
        principal_arn=PRINCIPAL,
    )


SAML = make("saml", 1)
ADMIN = make("admin", 2)


def botocore_read(path: Path) -> dict[str, dict[str, object]]:
    """What the AWS CLI sees in the file."""
    return botocore.configloader.raw_config_parse(str(path))  # type: ignore[no-any-return]


def expected_keys(credentials: Keys) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.session_token,
        "aws_security_token": credentials.session_token,
        "x_security_token_expires": "2026-11-21T11:00:00Z",
        "x_principal_arn": credentials.principal_arn,
        "x_role_arn": credentials.role_arn,
    }


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# Keys and file locations -------------------------------------------------------
def test_repr_hides_the_secret_key_and_the_token() -> None:
    text = repr(SAML) + str(SAML)
    assert SAML.secret_access_key not in text
    assert SAML.session_token not in text
    assert SAML.access_key_id in text
    assert SAML.role_arn in text


def test_expiration_must_be_aware_and_is_kept_in_utc() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Keys("A", "S", "T", datetime(2026, 1, 1), "r", "p")
    paris = timezone(timedelta(hours=1))
    moved = Keys("A", "S", "T", datetime(2026, 1, 1, 12, tzinfo=paris), "r", "p")
    assert moved.expiration == datetime(2026, 1, 1, 11, tzinfo=timezone.utc)
    assert moved.expiration.tzinfo == timezone.utc


def test_file_locations_follow_the_aws_environment_variables(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    env = {"AWS_SHARED_CREDENTIALS_FILE": "~/creds", "AWS_CONFIG_FILE": "/x/config"}
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(tmp_path)
    try:
        assert credentials_file(env) == tmp_path / "creds"
        assert config_file(env) == Path("/x/config")
        assert credentials_file(home) == tmp_path / ".aws" / "credentials"
        assert config_file({}) == tmp_path / ".aws" / "config"
    finally:
        if old_home is not None:
            os.environ["HOME"] = old_home


# Writing: the golden files ---------------------------------------------------------------------
def test_update_keeps_everything_else_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_bytes((DATA / "credentials.before").read_bytes())
    path.chmod(0o640)
    write_credentials(path, {"saml": SAML, "admin-123456789012": ADMIN})
    assert path.read_bytes() == (DATA / "credentials.after").read_bytes()
    assert mode_of(path) == 0o640
    seen = botocore_read(path)
    assert seen["saml"] == {**expected_keys(SAML), "region": "eu-west-1", "output": "json"}
    assert seen["admin-123456789012"] == expected_keys(ADMIN)
    assert seen["other"]["aws_access_key_id"] == "AKIAOTHER"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials", "credentials.lock"]


def test_crlf_file_stays_crlf(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    before = (DATA / "credentials.before").read_bytes()
    path.write_bytes(before.replace(b"\n", b"\r\n"))
    write_credentials(path, {"saml": SAML, "admin-123456789012": ADMIN})
    after = (DATA / "credentials.after").read_bytes().replace(b"\n", b"\r\n")
    assert path.read_bytes() == after


def test_missing_final_newline_stays_missing(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    before = (DATA / "credentials.before").read_bytes()
    path.write_bytes(before.rstrip(b"\n"))
    write_credentials(path, {"saml": SAML, "admin-123456789012": ADMIN})
    assert path.read_bytes() == (DATA / "credentials.after").read_bytes().rstrip(b"\n")


def test_keys_are_appended_to_the_last_profile_of_a_file_without_final_newline(
    tmp_path: Path,
) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(b"[saml]\nregion = eu-west-1")
    write_credentials(path, {"saml": SAML})
    keys = "".join(f"\n{key} = {value}" for key, value in expected_keys(SAML).items())
    assert path.read_text() == "[saml]\nregion = eu-west-1" + keys


def test_new_file_in_a_new_directory_is_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".aws" / "credentials"
    old = os.umask(0o022)
    try:
        write_credentials(path, {"saml": SAML})
    finally:
        os.umask(old)
    keys = "".join(f"{key} = {value}\n" for key, value in expected_keys(SAML).items())
    assert path.read_text() == "[saml]\n" + keys
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert mode_of(path.parent.parent) == 0o700


@pytest.mark.parametrize(
    ("before", "separator"),
    [
        (b"", b""),
        (b"# only a comment\n", b"\n"),
        (b"[a]\nregion = x\n", b"\n"),
        (b"[a]\nregion = x\n\n", b""),
        (b"[a]\nregion = x\n   \n", b""),
        (b"[a]\nregion = x", b"\n\n"),
    ],
)
def test_new_profile_comes_after_exactly_one_blank_line(
    tmp_path: Path, before: bytes, separator: bytes
) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(before)
    write_credentials(path, {"saml": SAML})
    keys = "\n".join(f"{key} = {value}" for key, value in expected_keys(SAML).items())
    final = b"" if before and not before.endswith(b"\n") else b"\n"
    assert path.read_bytes() == before + separator + b"[saml]\n" + keys.encode() + final


def test_symlinked_file_is_written_at_its_target(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "aws-credentials"
    real.parent.mkdir()
    real.write_bytes(b"[other]\nregion = x\n")
    real.chmod(0o644)
    link = tmp_path / "credentials"
    link.symlink_to(real)
    write_credentials(link, {"saml": SAML})
    assert link.is_symlink()
    assert mode_of(real) == 0o644
    assert botocore_read(real)["saml"] == expected_keys(SAML)
    assert botocore_read(real)["other"] == {"region": "x"}


def test_rewriting_the_same_values_does_not_touch_the_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    write_credentials(path, {"saml": SAML})
    before = path.stat()
    write_credentials(path, {"saml": SAML})
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert path.stat().st_ino == before.st_ino


@pytest.mark.parametrize(
    ("line", "replaced"),
    [
        ("aws_access_key_id =", "aws_access_key_id = {}"),
        ("aws_access_key_id=", "aws_access_key_id={}"),
        ("aws_access_key_id =   ", "aws_access_key_id = {}   "),
        ("  AWS_ACCESS_KEY_ID\t:\told  ", "  AWS_ACCESS_KEY_ID\t:\t{}  "),
        ("aws_access_key_id = a = b", "aws_access_key_id = {}"),
    ],
)
def test_values_are_replaced_in_place(tmp_path: Path, line: str, replaced: str) -> None:
    path = tmp_path / "credentials"
    path.write_text(f"[saml]\n{line}\nregion = x\n")
    write_credentials(path, {"saml": SAML})
    assert path.read_text().splitlines()[1] == replaced.format(SAML.access_key_id)
    assert botocore_read(path)["saml"]["aws_access_key_id"] == SAML.access_key_id


def test_multi_line_value_is_replaced_whole(tmp_path: Path) -> None:
    # botocore reads deeper-indented lines as part of the value above them.
    path = tmp_path / "credentials"
    path.write_bytes(b"[saml]\naws_session_token = old\n  continued\n# note\n  more\nregion = x\n")
    write_credentials(path, {"saml": SAML})
    text = path.read_text()
    assert "continued" not in text
    assert "more" not in text
    assert "# note\n" in text
    assert botocore_read(path)["saml"] == {**expected_keys(SAML), "region": "x"}


def test_keys_in_an_indented_profile_do_not_become_continuations(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(b"[a]\n  region = x\n[saml]\n    [other]\nregion = y\n")
    write_credentials(path, {"a": SAML, "saml": ADMIN})
    seen = botocore_read(path)
    assert seen["a"] == {**expected_keys(SAML), "region": "x"}
    assert seen["saml"] == expected_keys(ADMIN)
    assert seen["other"] == {"region": "y"}


def test_files_botocore_reads_are_accepted(tmp_path: Path) -> None:
    text = (
        "[DEFAULT]\nregion: ap-south-1\n"
        "[saml]\n  aws_access_key_id : old ; not a comment\n"
        "s3 =\n    addressing_style = path\n\n    signature_version = s3v4\n"
        "[other]\nk=%(not interpolated)s\n"
    )
    path = tmp_path / "credentials"
    path.write_text(text)
    write_credentials(path, {"saml": SAML})
    seen = botocore_read(path)
    nested = {"addressing_style": "path", "signature_version": "s3v4"}
    assert seen["saml"] == {**expected_keys(SAML), "s3": nested, "region": "ap-south-1"}
    assert seen["other"] == {"k": "%(not interpolated)s", "region": "ap-south-1"}
    assert path.read_text().startswith("[DEFAULT]\nregion: ap-south-1\n[saml]\n")


# Refusing what cannot be parsed -----------------------------------------------------------------
CORRUPT_LINES = {
    "duplicate-section.ini": 7,
    "duplicate-key.ini": 4,
    "key-before-section.ini": 2,
    "garbage-line.ini": 3,
    "empty-key.ini": 2,
    "nested-without-equals.ini": 4,
}
CORRUPT_BYTES = {
    "invalid-utf8": (b"[saml]\nregion = x\nname = caf\xe9\n", 3),
    "binary": (bytes(range(256)) * 4, 3),  # \n and \r come before the first non-UTF-8 byte
    "nul-bytes": (b"[saml]\nregion = x\x00\x00\n", 2),
    "bom": (b"\xef\xbb\xbf[saml]\nregion = x\n", 1),
}


def corrupt_cases() -> list[tuple[str, bytes, int]]:
    cases = [
        (name, (DATA / "corrupt" / name).read_bytes(), line) for name, line in CORRUPT_LINES.items()
    ]
    cases += [(name, data, line) for name, (data, line) in CORRUPT_BYTES.items()]
    return cases


@pytest.mark.parametrize(("name", "data", "line"), corrupt_cases())
def test_corrupt_file_is_refused_and_left_untouched(
    tmp_path: Path, name: str, data: bytes, line: int
) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(data)
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    with pytest.raises(LocalFileError) as caught:
        write_credentials(path, {"saml": SAML})
    assert f"{path} line {line}:" in str(caught.value)
    assert caught.value.exit_code == 7
    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == 1_600_000_000_000_000_000
    with pytest.raises(LocalFileError, match=f"line {line}:"):
        read_profile(path, "saml")
    if name != "nul-bytes":  # botocore reads NULs as text; we refuse them as binary
        with pytest.raises(botocore.exceptions.ConfigParseError):
            botocore_read(path)


def test_errors_never_show_secrets_from_the_file(tmp_path: Path) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    path = tmp_path / "credentials"
    path.write_text(f"[saml]\naws_secret_access_key = {secret}\n{secret}\n")
    with pytest.raises(LocalFileError) as caught:
        write_credentials(path, {"saml": SAML})
    assert secret not in str(caught.value)
    assert "line 3" in str(caught.value)


# Input validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["", " saml", "saml ", "sa]ml", "sa\nml", "sa\rml", "\t", "DEFAULT"]
)
def test_invalid_profile_names_are_usage_errors(tmp_path: Path, name: str) -> None:
    path = tmp_path / "credentials"
    with pytest.raises(UsageError):
        write_credentials(path, {name: SAML})
    with pytest.raises(UsageError):
        write_config(path, name, {"region": "x"})
    assert not path.exists()


def test_profile_names_with_spaces_work_in_credentials_but_not_in_config(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    write_credentials(path, {"my profile": SAML})
    assert botocore_read(path)["my profile"] == expected_keys(SAML)
    with pytest.raises(UsageError, match="spaces"):
        write_config(tmp_path / "config", "my profile", {"region": "x"})


def test_unstorable_credential_value_is_refused_without_showing_it(tmp_path: Path) -> None:
    bad = Keys("A", "S", "token\nwith a line break", EXPIRES, "r", "p")
    with pytest.raises(StsError) as caught:
        write_credentials(tmp_path / "credentials", {"saml": bad})
    assert "token\nwith" not in str(caught.value)
    assert "aws_session_token" in str(caught.value)
    assert not (tmp_path / "credentials").exists()


def test_secrets_never_reach_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "credentials"
    write_credentials(path, {"saml": SAML})
    write_credentials(path, {"saml": ADMIN})
    for credentials in (SAML, ADMIN):
        assert credentials.secret_access_key not in caplog.text
        assert credentials.session_token not in caplog.text


# read_profile -----------------------------------------------------------------------------------
def test_read_profile(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    assert read_profile(path, "saml") is None
    path.write_bytes((DATA / "credentials.after").read_bytes())
    assert read_profile(path, "saml") == {
        **expected_keys(SAML),
        "region": "eu-west-1",
        "output": "json",
    }
    assert read_profile(path, "missing") is None
    path.write_text("[DEFAULT]\nregion = x\n[saml]\nAWS_Access_Key_ID = A\n")
    assert read_profile(path, "saml") == {"region": "x", "aws_access_key_id": "A"}


def test_read_profile_of_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LocalFileError, match="Cannot read"):
        read_profile(tmp_path, "saml")


# write_config -----------------------------------------------------------------------------------
def test_write_config_changes_only_the_given_keys(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes((DATA / "config.before").read_bytes())
    write_config(path, "saml", {"region": "eu-north-1", "output": "json"})
    write_config(path, "admin", {"region": "us-west-2"})
    assert path.read_bytes() == (DATA / "config.after").read_bytes()
    write_config(path, "default", {"output": "text"})
    assert botocore_read(path)["default"] == {"region": "us-east-1", "output": "text"}


def test_write_config_finds_profiles_the_way_botocore_does(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text('[profile   "saml"]\nregion = x\n[profile default]\noutput = json\n')
    write_config(path, "saml", {"region": "y"})
    write_config(path, "default", {"region": "z"})
    assert path.read_text() == (
        '[profile   "saml"]\nregion = y\n[profile default]\noutput = json\nregion = z\n'
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [("region", "eu\nwest"), ("region", ""), ("region", " x"), ("bad key", "x"), ("[x", "y")],
)
def test_write_config_refuses_what_cannot_round_trip(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(UsageError):
        write_config(tmp_path / "config", "saml", {key: value})


# Concurrency ------------------------------------------------------------------------------------
def _write_one_profile(path: str, number: int, barrier: object) -> None:
    barrier.wait(60)  # type: ignore[attr-defined]
    try:
        write_credentials(Path(path), {f"role{number:02d}": make(f"role{number:02d}", number)})
    except BaseException:
        os._exit(1)
    os._exit(0)


def test_twenty_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    before = (DATA / "credentials.before").read_bytes()
    path.write_bytes(before)
    barrier = FORK.Barrier(20)
    workers = [
        FORK.Process(target=_write_one_profile, args=(str(path), number, barrier))
        for number in range(20)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0] * 20
    data = path.read_bytes()
    assert data.startswith(before)
    seen = botocore_read(path)
    for number in range(20):
        name = f"role{number:02d}"
        assert seen[name] == expected_keys(make(name, number))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials", "credentials.lock"]


# Against botocore, on many generated files ------------------------------------------------------
FRAGMENTS = [
    "[a]", "[b]", " [a]", "[DEFAULT]", "[a] trailing", "[]", "[[x]]", "[saml]", "k = v", "K=V2",
    "k: v", "  k = v", "\tz = 1", "x_y =", "  nested = 1", "  bad", "# c", " ; c", "", "   ",
    "=v", ": v", "garbage", "key = a = b", "a:b=c", "\x0bk=1", "s3 =", "    style = path",
    "k = v # c", "aws_session_token = old", "AWS_ACCESS_KEY_ID=old",
]  # fmt: skip


def generated_files(count: int) -> list[str]:
    rng = random.Random(20261121)
    files = []
    for _ in range(count):
        uniform = rng.choice(["\n", "\r\n", "\r"]) if rng.random() < 0.8 else None
        pieces = []
        for _ in range(rng.randint(0, 8)):
            pieces += [rng.choice(FRAGMENTS), uniform or rng.choice(["\n", "\r\n", "\r"])]
        if pieces and rng.random() < 0.3:
            pieces.pop()
        files.append("".join(pieces))
    return files


def test_parser_agrees_with_botocore(tmp_path: Path) -> None:
    for number, text in enumerate(generated_files(3000)):
        path = tmp_path / f"credentials{number}"  # new files: truncating one is slow on ext4
        path.write_bytes(text.encode())
        try:
            reference = botocore_read(path)
        except botocore.exceptions.ConfigParseError:
            with pytest.raises(LocalFileError):
                read_profile(path, "a")
            continue
        try:
            document = creds._parse(text)
        except creds._ParseError:
            # Stricter on purpose: a nested [DEFAULT] value without '=' breaks botocore as soon
            # as the file has a profile, which it has once we wrote one.
            assert reference == {}, repr(text)
            assert "[DEFAULT]" in text, repr(text)
            continue
        assert sorted(document.sections) == sorted(reference), repr(text)
        for name, values in reference.items():
            mine = read_profile(path, name)
            assert mine is not None
            assert {key: as_botocore(value) for key, value in mine.items()} == values, repr(text)


def as_botocore(value: str) -> str | dict[str, str]:
    """botocore's reading of a value that starts on the next line: nested `key = value`s."""
    if not value.startswith("\n"):
        return value
    pairs = (line.strip().split("=", 1) for line in value.splitlines() if line.strip())
    return {key.strip(): nested.strip() for key, nested in pairs}


def test_writer_keeps_what_botocore_sees_in_other_profiles(tmp_path: Path) -> None:
    written = 0
    for number, text in enumerate(generated_files(600)):
        path = tmp_path / f"credentials{number}"
        path.write_bytes(text.encode())
        try:
            before = botocore_read(path)
            write_credentials(path, {"a": SAML, f"new{number}": ADMIN})
        except (botocore.exceptions.ConfigParseError, LocalFileError):
            continue
        written += 1
        after = botocore_read(path)
        others_in_a = {k: v for k, v in after["a"].items() if k not in expected_keys(SAML)}
        assert {k: after["a"][k] for k in expected_keys(SAML)} == expected_keys(SAML), repr(text)
        assert {k: after[f"new{number}"][k] for k in expected_keys(ADMIN)} == expected_keys(ADMIN)
        for name, values in before.items():
            if name != "a":
                assert after[name] == values, repr(text)
            else:
                kept = {k: v for k, v in values.items() if k not in expected_keys(SAML)}
                assert kept == others_in_a, repr(text)
        ends_with_newline = text.endswith(("\n", "\r"))
        assert path.read_bytes().endswith((b"\n", b"\r")) == (ends_with_newline or not text), repr(
            text
        )
    assert written > 100


# Import cost ------------------------------------------------------------------------------------
def test_importing_credentials_stays_light() -> None:
    code = (
        "import sys, awscli_saml_sso.aws.config_files\n"
        "heavy = {'filelock', 'botocore', 'boto3', 'configparser'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
