"""Pure parts of the commands of issue 15: chaining rules, console URLs, the credential
server's answers, account names and profile-name templates, doctor's clock check.
"""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qs, urlsplit

import pytest

from awscli_saml_sso import doctor
from awscli_saml_sso.aws import accounts, chain, console
from awscli_saml_sso.aws.credential_server import (
    CredentialServer,
    container_document,
    seconds_until_renewal,
)
from awscli_saml_sso.aws.roles import all_role_profiles, menu_lines
from awscli_saml_sso.aws.saml import Role
from awscli_saml_sso.errors import UsageError
from awscli_saml_sso.model import Keys

PROVIDER = "arn:aws:iam::{}:saml-provider/Idp"


def role(account: str, name: str) -> Role:
    return Role(f"arn:aws:iam::{account}:role/{name}", PROVIDER.format(account))


def keys(seconds: float, key: str = "ASIAFIRST") -> Keys:
    expires = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return Keys(key, "secret", "token", expires, "arn:aws:iam::111111111111:role/R")


# Chaining ------------------------------------------------------------------------------------
def test_chained_duration_is_clamped_to_an_hour_with_a_note() -> None:
    assert chain.chained_duration(None) == (3600, None)
    assert chain.chained_duration(900) == (900, None)
    seconds, note = chain.chained_duration(7200)
    assert seconds == 3600 and note is not None and "one hour" in note


@pytest.mark.parametrize(
    ("arn", "external_id", "message"),
    [
        ("arn:aws:iam::1:role/R", None, "not an IAM role ARN"),
        (None, "abc", "only makes sense with --chain-role-arn"),
        ("arn:aws:iam::111111111111:role/R", "bad id!", "--external-id"),
    ],
)
def test_bad_chain_options(arn: str | None, external_id: str | None, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        chain.check_chain_options(arn, external_id)


def test_session_name_is_carried_over_and_made_acceptable() -> None:
    assert chain.session_name("alice@example.com") == "alice@example.com"
    assert chain.session_name("Alice Smith") == "Alice-Smith"
    assert chain.session_name(None) == "awscli_saml_sso"


# Console ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("partition", "federation", "destination"),
    [
        ("aws", "https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/"),
        (
            "aws-us-gov",
            "https://signin.amazonaws-us-gov.com/federation",
            "https://console.amazonaws-us-gov.com/",
        ),
        ("aws-cn", "https://signin.amazonaws.cn/federation", "https://console.amazonaws.cn/"),
    ],
)
def test_console_hosts_per_partition(partition: str, federation: str, destination: str) -> None:
    chosen = console.partition_for(f"arn:{partition}:iam::111111111111:role/R", {})
    assert (chosen.federation_url, chosen.console_url) == (federation, destination)
    url = urlsplit(console.login_url("tok", chosen))
    assert f"{url.scheme}://{url.netloc}{url.path}" == federation
    assert parse_qs(url.query) == {
        "Action": ["login"],
        "Destination": [destination],
        "SigninToken": ["tok"],
    }


def test_federation_override_must_be_https_or_loopback() -> None:
    arn = "arn:aws:iam::111111111111:role/R"
    local = {"ASS_FEDERATION_URL": "http://127.0.0.1:9/federation"}
    assert console.partition_for(arn, local).federation_url == local["ASS_FEDERATION_URL"]
    with pytest.raises(UsageError, match="https"):
        console.partition_for(arn, {"ASS_FEDERATION_URL": "http://example.com/federation"})


def test_console_duration_limits() -> None:
    assert console.console_duration(None, chained=False) == (3600, None)
    assert console.console_duration(43200, chained=False) == (43200, None)
    seconds, note = console.console_duration(7200, chained=True)
    assert seconds == 3600 and note is not None
    with pytest.raises(UsageError, match="900 to 43200"):
        console.console_duration(600, chained=False)


# The credential server ------------------------------------------------------------------------
def test_container_document_has_the_sdk_fields() -> None:
    document = container_document(keys(900))
    assert set(document) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"}
    assert document["Expiration"].endswith("Z")


def test_renewal_time() -> None:
    assert 3590 - 900 <= seconds_until_renewal(keys(3600), 900) <= 3600 - 900
    # Keys that live no longer than min_remaining: renewed after a quarter of their life.
    assert 200 <= seconds_until_renewal(keys(900), 900) <= 226
    assert seconds_until_renewal(keys(-5), 900) == 1.0


def _get(url: str, token: str | None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_credential_server_needs_the_token_and_renews() -> None:
    fresh = keys(3600, "ASIASECOND")
    server = CredentialServer(keys(2, "ASIAFIRST"), lambda: fresh, min_remaining=900)
    with server.running():
        assert server.url.startswith("http://127.0.0.1:")
        assert _get(server.url, None)[0] == 403
        assert _get(server.url, "not-the-token")[0] == 403
        assert _get(server.url.replace("/credentials", "/other"), server.token)[0] == 404
        status, body = _get(server.url, server.token)
        assert status == 200 and body["AccessKeyId"] in ("ASIAFIRST", "ASIASECOND")
        deadline = datetime.now(timezone.utc) + timedelta(seconds=10)
        while body["AccessKeyId"] != "ASIASECOND" and datetime.now(timezone.utc) < deadline:
            status, body = _get(server.url, server.token)
        assert body["AccessKeyId"] == "ASIASECOND"
    variables = server.variables("eu-west-1")
    assert variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == server.url
    assert variables["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == server.token


# Account names --------------------------------------------------------------------------------
ROLES = (role("111111111111", "Admin"), role("222222222222", "Admin"), role("222222222222", "Dev"))


def test_names_set_by_the_person_win_and_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "ass" / "accounts.json"
    accounts.set_name(path, "111111111111", "prod")
    names = accounts.discover(path, ROLES, lambda r: keys(900), lambda k: "acme-dev", print)
    assert names == {"111111111111": "prod", "222222222222": "acme-dev"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [row["source"] for row in accounts.listing(path)] == ["set", "alias"]
    # Cached: a second discovery asks nobody.
    assert accounts.discover(path, ROLES, _never, _never, print) == names
    with pytest.raises(UsageError, match="12-digit"):
        accounts.set_name(path, "12", "x")
    with pytest.raises(UsageError, match="not a usable account name"):
        accounts.set_name(path, "111111111111", "\x1b[31mred")


def _never(*_: object) -> NoReturn:
    raise AssertionError("asked although cached")


def test_menu_shows_account_names() -> None:
    lines = menu_lines(ROLES, {"222222222222": "staging"})
    assert lines[0] == "Account 111111111111:"
    assert lines[2] == "Account 222222222222 (staging):"


def test_profile_name_template() -> None:
    names = {"111111111111": "prod main"}
    profiles = all_role_profiles(ROLES, "{account_name}-{role_name}", names)
    assert list(profiles) == ["prod-main-Admin", "222222222222-Admin", "222222222222-Dev"]
    with pytest.raises(UsageError, match="same profile name"):
        all_role_profiles(ROLES, "{role_name}", names)
    for bad in ("{role}", "{role_name!r}", "{role_name:>9}", "plain", "{"):
        with pytest.raises(UsageError):
            accounts.check_template(bad)


# doctor ----------------------------------------------------------------------------------------
def test_clock_skew_from_the_date_header() -> None:
    now = datetime.now(timezone.utc)
    [same] = doctor.clock_skew("kc", format_datetime(now, usegmt=True))
    assert same.status == "ok"
    [skewed] = doctor.clock_skew("kc", format_datetime(now - timedelta(minutes=10), usegmt=True))
    assert skewed.status == "fail" and "ahead of the IdP" in skewed.detail
    [missing] = doctor.clock_skew("kc", None)
    assert missing.status == "warn"
