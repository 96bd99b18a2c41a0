"""STS handling that the emulator cannot exercise: AWS's refusals, and the duration retry.

moto's AssumeRoleWithSAML ignores DurationSeconds and never refuses a role (as measured
with moto 5.2.5), so these cases are driven by a tiny HTTP server speaking STS's Query
protocol with AWS's documented error shape. Everything else about STS is tested against
the real emulator in test_core_e2e.py.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from awscli_saml_sso.aws import sts
from awscli_saml_sso.aws.saml import Assertion, Role
from awscli_saml_sso.errors import StsError
from awscli_saml_sso.model import region_for

ROLE = Role(
    "arn:aws-us-gov:iam::123456789012:role/Dev",
    "arn:aws-us-gov:iam::123456789012:saml-provider/Idp",
)
NS = "https://sts.amazonaws.com/doc/2011-06-15/"
TOO_LONG = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


def assertion(duration: int | None) -> Assertion:
    return Assertion(
        saml_response="PHNhbWxwOlJlc3BvbnNlLz4=",
        status="urn:oasis:names:tc:SAML:2.0:status:Success",
        issuer="idp",
        roles=(ROLE,),
        session_name="jdoe",
        session_duration=duration,
        not_on_or_after=None,
        destination=None,
    )


def error(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    ).encode()


def success() -> bytes:
    return (
        f'<AssumeRoleWithSAMLResponse xmlns="{NS}"><AssumeRoleWithSAMLResult><Credentials>'
        "<AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
        "<SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>"
        "</Credentials></AssumeRoleWithSAMLResult></AssumeRoleWithSAMLResponse>"
    ).encode()


class FakeSts:
    """Answers each AssumeRoleWithSAML with the next scripted (status, body)."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.answers = answers
        self.durations: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                fake.durations.append(parse_qs(body)["DurationSeconds"][0])
                status, payload = fake.answers.pop(0)
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeSts:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def notes() -> Iterator[list[str]]:
    yield []


def assume_default(fake: FakeSts, notes: list[str]) -> object:
    """AssumeRoleWithSAML in us-east-1 through `fake` for an assertion without SessionDuration."""
    return sts.assume_role_with_saml(
        assertion(None),
        ROLE,
        sts.StsTarget("us-east-1", fake.url),
        duration=3600,
        notify=notes.append,
    )


def test_duration_too_long_is_retried_once_with_3600(notes: list[str]) -> None:
    with FakeSts([(400, error("ValidationError", TOO_LONG)), (200, success())]) as fake:
        keys = sts.assume_role_with_saml(
            assertion(28800),
            ROLE,
            sts.StsTarget("us-gov-west-1", fake.url),
            duration=28800,
            notify=notes.append,
        )
    assert fake.durations == ["28800", "3600"]
    assert keys.access_key_id == "ASIAEXAMPLE" and keys.role_arn == ROLE.role_arn
    assert len(notes) == 1 and "retrying with 3600 seconds" in notes[0]


def test_refusal_is_one_sentence_with_aws_message(notes: list[str]) -> None:
    refused = error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithSAML")
    with FakeSts([(403, refused)]) as fake, pytest.raises(StsError) as info:
        assume_default(fake, notes)
    assert info.value.exit_code == 6
    assert "Not authorized to perform sts:AssumeRoleWithSAML (AccessDenied)" in info.value.message
    assert fake.durations == ["3600"] and notes == []


def test_requested_duration_and_region_rules() -> None:
    assert sts.requested_duration(assertion(None), None) == (3600, None)
    assert sts.requested_duration(assertion(28800), None) == (28800, None)
    assert sts.requested_duration(assertion(28800), 7200) == (7200, None)
    lowered, note = sts.requested_duration(assertion(7200), 28800)
    assert lowered == 7200 and note is not None and "SessionDuration" in note
    assert region_for(ROLE.role_arn, None, {}) == "us-gov-west-1"
    assert region_for(ROLE.role_arn, "us-gov-east-1", {}) == "us-gov-east-1"
    assert region_for("arn:aws-cn:iam::123456789012:role/X", None, {}) == "cn-north-1"


def test_an_endpoint_that_is_not_sts_is_said_so(notes: list[str]) -> None:
    page = b"<html><body>Welcome to nginx</body></html>"
    with FakeSts([(200, page)]) as fake, pytest.raises(StsError) as info:
        assume_default(fake, notes)
    assert info.value.exit_code == 6
    assert "did not answer like STS" in info.value.message


def test_session_duration_outside_sts_limits_is_clamped() -> None:
    assert sts.requested_duration(assertion(600), None) == (900, None)
    assert sts.requested_duration(assertion(100000), None) == (43200, None)
