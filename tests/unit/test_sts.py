"""STS handling that the emulator cannot exercise: AWS's refusals, the duration retry, the
SigV4 signature of GetCallerIdentity, retries and unreachable endpoints.

moto's AssumeRoleWithSAML ignores DurationSeconds and never refuses a role, and moto checks
signatures loosely (as measured with moto 5.2.5), so these cases are driven by a tiny HTTP
server speaking STS's Query protocol with AWS's documented error shape, and the signature
is compared with botocore's own signer. The client against the real emulator:
tests/e2e/test_sts_moto.py.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from awscli_saml_sso.aws import sts, sts_query
from awscli_saml_sso.aws.saml import Assertion, Role
from awscli_saml_sso.errors import StsError
from awscli_saml_sso.model import Keys, region_for

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
        self.authorizations: list[str | None] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                fake.durations.append(parse_qs(body).get("DurationSeconds", [""])[0])
                fake.authorizations.append(self.headers.get("Authorization"))
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


KEYS = Keys("ASIAKEY", "secret", "token", dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))


def identity() -> bytes:
    return (
        f'<GetCallerIdentityResponse xmlns="{NS}"><GetCallerIdentityResult>'
        "<Arn>arn:aws:sts::123456789012:assumed-role/Dev/jdoe</Arn><UserId>U</UserId>"
        "<Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"
    ).encode()


def test_sigv4_signature_matches_botocores() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = "https://sts.eu-west-1.amazonaws.com/"
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(Credentials("ASIAKEY", "secret", "token"), "sts", "eu-west-1").add_auth(request)
    # botocore signs at "now": sign ours at the moment it wrote into X-Amz-Date.
    moment = dt.datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    ours = sts_query.sign(
        url, headers, body, KEYS, "eu-west-1", moment.replace(tzinfo=dt.timezone.utc)
    )
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-security-token"] == "token"


def test_caller_identity_is_signed_and_read() -> None:
    with FakeSts([(200, identity())]) as fake:
        arn = sts.caller_identity(KEYS, sts.StsTarget("us-east-1", fake.url))
    assert arn == "arn:aws:sts::123456789012:assumed-role/Dev/jdoe"
    (authorization,) = fake.authorizations
    assert authorization and authorization.startswith("AWS4-HMAC-SHA256 Credential=ASIAKEY/")
    assert "/us-east-1/sts/aws4_request" in authorization


def test_assume_role_with_saml_is_unsigned(notes: list[str]) -> None:
    with FakeSts([(200, success())]) as fake:
        assume_default(fake, notes)
    assert fake.authorizations == [None]


def test_a_server_error_is_retried_once(notes: list[str]) -> None:
    with FakeSts([(503, b"busy"), (200, success())]) as fake:
        keys = assume_default(fake, notes)
    assert fake.durations == ["3600", "3600"] and keys is not None


def test_throttling_twice_is_a_refusal(notes: list[str]) -> None:
    throttled = error("Throttling", "Rate exceeded")
    with FakeSts([(400, throttled), (400, throttled)]) as fake, pytest.raises(StsError) as info:
        assume_default(fake, notes)
    assert "Rate exceeded (Throttling)" in info.value.message and len(fake.durations) == 2


def test_an_unreachable_endpoint_says_where(notes: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the call: nothing listens
    with pytest.raises(StsError) as info:
        sts.assume_role_with_saml(
            assertion(None),
            ROLE,
            sts.StsTarget("us-east-1", f"http://127.0.0.1:{port}"),
            duration=3600,
            notify=notes.append,
        )
    assert info.value.exit_code == 6
    assert f"could not reach http://127.0.0.1:{port}" in info.value.message


def test_an_unusable_endpoint_url_is_said_so(notes: list[str]) -> None:
    with pytest.raises(StsError) as info:
        sts.assume_role_with_saml(
            assertion(None),
            ROLE,
            sts.StsTarget("us-east-1", "http://[::1"),
            duration=3600,
            notify=notes.append,
        )
    assert "is not a usable STS endpoint" in info.value.message


def test_regional_endpoints() -> None:
    assert sts_query.endpoint("eu-west-1", None) == "https://sts.eu-west-1.amazonaws.com"
    assert sts_query.endpoint("cn-north-1", None) == "https://sts.cn-north-1.amazonaws.com.cn"
    assert sts_query.endpoint("us-gov-west-1", None) == "https://sts.us-gov-west-1.amazonaws.com"
    assert sts_query.endpoint("us-east-1", "http://x:4566") == "http://x:4566"
