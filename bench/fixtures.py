"""Synthetic inputs for the benchmark: a SAMLResponse with N roles and a big credentials file.

Standard library only, so the benchmark driver can build them without loading the tool.
moto's AssumeRoleWithSAML checks no signature, so the assertion is unsigned; it needs a
NotOnOrAfter in the future and one ``Attribute`` element per role value (moto answers 500
to several ``AttributeValue`` elements in one Role attribute, as measured with moto 5.2.5).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

ACCOUNT_ID = "000000000000"  # the rig's (moto's) account
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:saml-provider/SamlExampleProvider"
ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
SESSION_NAME_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
_PROTOCOL_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
_ASSERTION_NS = "urn:oasis:names:tc:SAML:2.0:assertion"


def role_arn(index: int) -> str:
    """The ARN of the synthetic role number `index` (names sort in index order)."""
    return f"arn:aws:iam::{ACCOUNT_ID}:role/Bench{index:04d}"


def _attribute(name: str, value: str) -> str:
    return (
        f'<saml:Attribute Name="{name}">'
        f"<saml:AttributeValue>{value}</saml:AttributeValue></saml:Attribute>"
    )


def saml_response(roles: int, *, valid_for: timedelta = timedelta(hours=1)) -> str:
    """The base64 SAMLResponse of an unsigned assertion granting `roles` roles."""
    now = datetime.now(timezone.utc)
    issued = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = (now + valid_for).strftime("%Y-%m-%dT%H:%M:%SZ")
    attributes = _attribute(SESSION_NAME_ATTRIBUTE, "bench") + "".join(
        _attribute(ROLE_ATTRIBUTE, f"{role_arn(i)},{PROVIDER_ARN}") for i in range(roles)
    )
    xml = (
        f'<samlp:Response xmlns:samlp="{_PROTOCOL_NS}" xmlns:saml="{_ASSERTION_NS}" '
        f'ID="_bench-response" Version="2.0" IssueInstant="{issued}" '
        'Destination="https://signin.aws.amazon.com/saml">'
        "<saml:Issuer>bench</saml:Issuer>"
        f'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
        "</samlp:Status>"
        f'<saml:Assertion ID="_bench-assertion" Version="2.0" IssueInstant="{issued}">'
        "<saml:Issuer>bench</saml:Issuer>"
        "<saml:Subject><saml:NameID>bench</saml:NameID>"
        '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f'<saml:SubjectConfirmationData NotOnOrAfter="{expires}" '
        'Recipient="https://signin.aws.amazon.com/saml"/></saml:SubjectConfirmation>'
        "</saml:Subject>"
        f'<saml:Conditions NotBefore="{issued}" NotOnOrAfter="{expires}"/>'
        f"<saml:AttributeStatement>{attributes}</saml:AttributeStatement>"
        "</saml:Assertion></samlp:Response>"
    )
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


def profile_name(index: int) -> str:
    """The name of profile number `index` in the big credentials file."""
    return f"p{index:04d}"


def _filler(seed: str, length: int) -> str:
    """Deterministic base64-looking text (no randomness: every run reads the same file)."""
    out = ""
    counter = 0
    while len(out) < length:
        digest = hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        out += base64.b64encode(digest).decode("ascii").rstrip("=")
        counter += 1
    return out[:length]


def credentials_text(profiles: int, *, token_chars: int = 700) -> str:
    """A credentials file of `profiles` profiles shaped like the ones this tool writes.

    Each profile has the seven keys the tool writes, with a session token of `token_chars`
    characters (moto's are ~360, real STS tokens 700-1,000), so 5,000 profiles make ~8 MB.
    """
    lines: list[str] = ["# benchmark credentials file", ""]
    for index in range(profiles):
        token = _filler(f"token{index}", token_chars)
        lines += [
            f"[{profile_name(index)}]",
            f"aws_access_key_id = ASIA{_filler(f'key{index}', 16).upper()}",
            f"aws_secret_access_key = {_filler(f'secret{index}', 40)}",
            f"aws_session_token = {token}",
            f"aws_security_token = {token}",
            "x_security_token_expires = 2030-01-01T00:00:00Z",
            f"x_principal_arn = {PROVIDER_ARN}",
            f"x_role_arn = {role_arn(index % 10_000)}",
            "",
        ]
    return "\n".join(lines)


def write_credentials_file(path: Path, profiles: int) -> int:
    """Write the big credentials file to `path` (0600); returns its size in bytes."""
    data = credentials_text(profiles).encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)
    path.chmod(0o600)
    return len(data)
