"""The rig proves itself without the product's code: Keycloak issues signed
assertions with the right attributes, and the emulator's STS turns them into
keys that reach the provisioned bucket (through boto3 and through the aws CLI).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import os
import re
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import rig as keycloak_rig
import rig_install
import rig_state
from support.rig import ACS_URL, Rig, SignInFailed

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
ATTR = "https://aws.amazon.com/SAML/Attributes/"
ROLE_VALUE = re.compile(
    r"^arn:aws:iam::\d{12}:role/[\w+=,.@-]+,arn:aws:iam::\d{12}:saml-provider/[\w.-]+$"
)


def attributes(xml: bytes) -> dict[str, list[str]]:
    """Attribute name -> all its values, across repeated Attribute elements."""
    found: dict[str, list[str]] = {}
    for attr in ET.fromstring(xml).iterfind(".//saml:Assertion//saml:Attribute", NS):
        values = [v.text or "" for v in attr.iterfind("saml:AttributeValue", NS)]
        found.setdefault(attr.attrib["Name"], []).extend(values)
    return found


def role_pair(rig: Rig, role_arn: str) -> str:
    return f"{role_arn},{rig.saml_provider_arn}"


@pytest.mark.rig
def test_admin_assertion_is_signed_and_carries_both_roles(rig: Rig) -> None:
    before = rig.count_logins("aws_admin")
    sign_in = rig.sign_in("aws_admin")
    root = ET.fromstring(sign_in.xml)

    assert sign_in.acs_url == ACS_URL
    assert not sign_in.asked_for_otp
    assert root.get("Destination") == ACS_URL
    assert root.find("ds:Signature", NS) is not None, "the Response document is signed"
    assertion = root.find("saml:Assertion", NS)
    assert assertion is not None
    assert assertion.find("ds:Signature", NS) is not None, "the assertion is signed"
    audience = assertion.findtext(".//saml:Audience", namespaces=NS)
    assert audience == "urn:amazon:webservices"
    name_id = assertion.find(".//saml:NameID", NS)
    assert name_id is not None
    assert name_id.get("Format") == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"

    attrs = attributes(sign_in.xml)
    assert sorted(attrs[ATTR + "Role"]) == sorted(
        [role_pair(rig, rig.role_admin_arn), role_pair(rig, rig.role_user_arn)]
    )
    assert attrs[ATTR + "RoleSessionName"] == ["aws_admin"]
    assert attrs[ATTR + "SessionDuration"] == ["28800"]
    assert rig.count_logins("aws_admin") == before + 1


@pytest.mark.rig
def test_user_assertion_has_one_role_and_no_session_duration(rig: Rig) -> None:
    attrs = attributes(rig.sign_in("aws_user").xml)

    assert attrs[ATTR + "Role"] == [role_pair(rig, rig.role_user_arn)]
    assert attrs[ATTR + "RoleSessionName"] == ["aws_user"]
    assert ATTR + "SessionDuration" not in attrs


@pytest.mark.rig
def test_void_user_gets_no_role_attribute(rig: Rig) -> None:
    attrs = attributes(rig.sign_in("aws_void").xml)

    assert ATTR + "Role" not in attrs
    assert attrs[ATTR + "RoleSessionName"] == ["aws_void"]


@pytest.mark.rig
def test_mfa_user_must_answer_the_totp_challenge(rig: Rig) -> None:
    import pyotp

    # The realm keeps the raw secret; authenticator apps get its bytes in base32.
    padding = "=" * (-len(rig.totp_secret_b32) % 8)
    assert base64.b32decode(rig.totp_secret_b32 + padding).decode() == rig.totp_secret
    code = pyotp.TOTP(rig.totp_secret_b32).now()
    with pytest.raises(SignInFailed, match="Invalid authenticator code"):
        rig.sign_in("aws_mfa", otp=f"{(int(code) + 1) % 1_000_000:06d}")

    sign_in = rig.sign_in("aws_mfa")
    # otpPolicyCodeReusable: one code serves two sign-ins in the same period,
    # so tests that run close together do not flake.
    again = rig.sign_in("aws_mfa", otp=code)

    assert sign_in.asked_for_otp
    assert again.asked_for_otp
    assert attributes(sign_in.xml)[ATTR + "Role"] == [role_pair(rig, rig.role_user_arn)]


@pytest.mark.rig
def test_wrong_password_is_refused(rig: Rig) -> None:
    before = rig.count_logins("aws_user", "LOGIN_ERROR")

    with pytest.raises(SignInFailed, match="Invalid username or password"):
        rig.sign_in("aws_user", password="not-the-password")

    assert rig.count_logins("aws_user", "LOGIN_ERROR") == before + 1


@pytest.mark.rig
def test_many_roles_user_spans_three_accounts(rig: Rig) -> None:
    roles = attributes(rig.sign_in("aws_many").xml)[ATTR + "Role"]

    assert len(roles) >= 120
    assert all(ROLE_VALUE.match(value) for value in roles)
    assert {value.split(":")[4] for value in roles} == {
        "000000000000",
        "111111111111",
        "222222222222",
    }


@pytest.mark.rig
@pytest.mark.parametrize("username", ["aws_user", "aws_admin", "aws_mfa", "aws_many"])
def test_only_aws_roles_are_emitted(rig: Rig, username: str) -> None:
    # Realm defaults (offline_access, uma_authorization, default-roles-aws)
    # must not leak into the Role attribute.
    roles = attributes(rig.sign_in(username).xml)[ATTR + "Role"]

    assert roles
    assert [value for value in roles if not ROLE_VALUE.match(value)] == []


def assume(rig: Rig, username: str, role_arn: str) -> dict[str, object]:
    import boto3
    import botocore
    from botocore.config import Config

    sts = boto3.client(
        "sts",
        endpoint_url=rig.endpoint_url,
        region_name="us-east-1",
        config=Config(signature_version=botocore.UNSIGNED),
    )
    answer: dict[str, object] = sts.assume_role_with_saml(
        RoleArn=role_arn,
        PrincipalArn=rig.saml_provider_arn,
        SAMLAssertion=rig.saml_response(username),
    )
    return answer


@pytest.mark.rig
@pytest.mark.parametrize(
    ("username", "role", "hours"),
    [("aws_admin", "Role.Admin", 8), ("aws_user", "Role.User", 1)],
)
def test_assume_role_with_saml_gives_keys_that_list_the_bucket(
    rig: Rig, username: str, role: str, hours: int
) -> None:
    import boto3

    role_arn = rig.role_admin_arn if role == "Role.Admin" else rig.role_user_arn
    answer = assume(rig, username, role_arn)

    user = answer["AssumedRoleUser"]
    assert isinstance(user, dict)
    assert user["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{role}/{username}"
    creds = answer["Credentials"]
    assert isinstance(creds, dict)
    left = creds["Expiration"] - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(hours=hours, minutes=-5) < left <= dt.timedelta(hours=hours)
    s3 = boto3.client(
        "s3",
        endpoint_url=rig.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert s3.list_objects_v2(Bucket=rig.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.rig
def test_aws_cli_assumes_the_role_and_lists_the_bucket(rig: Rig, tmp_path: Path) -> None:
    aws = rig_install.find_tool("aws", keycloak_rig.REPO)
    assert aws, "the aws CLI is a dev dependency"
    # Private AWS files: the real home is never read or written.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = str(tmp_path / "config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "credentials")
    env["AWS_DEFAULT_REGION"] = "us-east-1"

    def cli(*args: str, profile: str | None = None) -> str:
        extra = ["--profile", profile] if profile else []
        done = subprocess.run(
            [aws, "--endpoint-url", rig.endpoint_url, *extra, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    answer = json.loads(
        cli(
            "sts",
            "assume-role-with-saml",
            "--no-sign-request",
            "--role-arn",
            rig.role_admin_arn,
            "--principal-arn",
            rig.saml_provider_arn,
            "--saml-assertion",
            rig.saml_response("aws_admin"),
        )
    )
    creds = answer["Credentials"]
    (tmp_path / "credentials").write_text(
        "[rig-test]\n"
        f"aws_access_key_id = {creds['AccessKeyId']}\n"
        f"aws_secret_access_key = {creds['SecretAccessKey']}\n"
        f"aws_session_token = {creds['SessionToken']}\n"
    )
    key = f"rig-test/{uuid.uuid4()}.txt"
    (tmp_path / "hello.txt").write_text("hello from the rig test\n")
    cli("s3", "cp", str(tmp_path / "hello.txt"), f"s3://{rig.bucket}/{key}", profile="rig-test")

    listing = cli("s3", "ls", f"s3://{rig.bucket}/rig-test/", profile="rig-test")
    identity = json.loads(cli("sts", "get-caller-identity", profile="rig-test"))

    assert key.split("/")[1] in listing
    assert identity["Arn"].endswith(":assumed-role/Role.Admin/aws_admin")


# --- the runner's own error sentences (no rig needed) ------------------------


@pytest.fixture
def stranger_port() -> Iterator[int]:
    """A loopback port held by a plain HTTP server that is not the rig."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_stranger_on_the_keycloak_port_is_a_clear_error(
    stranger_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keycloak_rig, "KEYCLOAK_PORT", stranger_port)
    monkeypatch.setattr(keycloak_rig, "ENDPOINT_PORT", _free_port())

    with pytest.raises(keycloak_rig.RigError, match=rf"Port {stranger_port} is held by a program"):
        keycloak_rig._plan(rig_state.State(), print)


def test_missing_java_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))

    with pytest.raises(keycloak_rig.RigError, match="apt-get install openjdk-17-jre-headless"):
        rig_install.java()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_docker_compose_shares_the_native_rig_files() -> None:
    import yaml  # type: ignore[import-untyped]

    compose = yaml.safe_load((keycloak_rig.REPO / "docker-compose.yml").read_text())
    keycloak = compose["services"]["keycloak"]
    localstack = compose["services"]["localstack"]

    assert keycloak["image"] == f"quay.io/keycloak/keycloak:{keycloak_rig.KEYCLOAK_VERSION}"
    assert f"--hostname={keycloak_rig.KEYCLOAK_URL}" in keycloak["command"]
    assert keycloak["ports"] == [f"127.0.0.1:{keycloak_rig.KEYCLOAK_PORT}:8080"]
    mounts = [v.split(":")[0] for v in keycloak["volumes"] + localstack["volumes"]]
    assert mounts == ["./keycloak/realm-aws.json", "./localstack-setup.sh"]
    assert localstack["volumes"][0].split(":")[1].startswith("/etc/localstack/init/ready.d/")
    assert localstack["ports"] == [f"127.0.0.1:{keycloak_rig.ENDPOINT_PORT}:4566"]
