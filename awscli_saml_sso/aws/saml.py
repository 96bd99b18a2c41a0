"""Turn a captured SAMLResponse into a typed :class:`Assertion`: a pure function, no I/O.

The input may be the base64 form value, the same value URL- or form-encoded, or the decoded
XML. The XML is parsed with defusedxml and any DTD or entity declaration is refused, so nothing
is ever expanded, fetched or read. Elements are matched by namespace URI, never by prefix,
because IdPs spell the prefixes differently (``saml:``, ``saml2:``, a default namespace).

Errors are :class:`~awscli_saml_sso.errors.SamlError` with one sentence; they never quote the
assertion, only the offending role value, status or time.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from awscli_saml_sso.errors import SamlError
from awscli_saml_sso.model import MAX_SAML_INPUT_BYTES, MAX_SAML_XML_BYTES, saml_too_large
from awscli_saml_sso.timestamps import format_timestamp

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

_log = logging.getLogger(__name__)

_PROTOCOL = "{urn:oasis:names:tc:SAML:2.0:protocol}"
_ASSERTION = "{urn:oasis:names:tc:SAML:2.0:assertion}"
_STATUS_PREFIX = "urn:oasis:names:tc:SAML:2.0:status:"
STATUS_SUCCESS = _STATUS_PREFIX + "Success"

ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
ROLE_SESSION_NAME_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
SESSION_DURATION_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/SessionDuration"

# A response with 1,000 roles is about 250 KB; 2 MiB leaves room for any real IdP while
# keeping a hostile or mistaken input from costing real memory and time.
MAX_XML_BYTES = MAX_SAML_XML_BYTES
# Base64 adds a third and URL-encoding of '+', '/', '=' a little more; checked before decoding.
_MAX_INPUT_CHARS = MAX_SAML_INPUT_BYTES

_ROLE_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):iam::(?P<account>\d{12}):role/"
    r"(?:[^\s,/]+/)*(?P<name>[^\s,/]+)"
)
_PROVIDER_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:iam::\d{12}:saml-provider/[^\s,/]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*")
_URLSAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]*")
_XML_ENCODING = re.compile(r"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_XS_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?"
)

_NEITHER = (
    "The SAML response is neither base64-encoded XML nor XML; give the SAMLResponse form "
    "value (base64, URL-encoded or not) or the decoded XML document."
)


def is_role_arn(text: str) -> bool:
    """True when `text` is an IAM role ARN (any partition)."""
    return _ROLE_ARN.fullmatch(text) is not None


@dataclass(frozen=True)
class Role:
    """One AWS role the assertion grants, with the SAML provider that vouches for it.

    Raises ValueError when either ARN is not of its kind (the parser turns that into a
    SamlError quoting the IdP's value).
    """

    role_arn: str
    principal_arn: str

    def __post_init__(self) -> None:
        if _ROLE_ARN.fullmatch(self.role_arn) is None:
            raise ValueError(f"not an IAM role ARN: {self.role_arn!r}")
        if _PROVIDER_ARN.fullmatch(self.principal_arn) is None:
            raise ValueError(f"not an IAM SAML provider ARN: {self.principal_arn!r}")

    @property
    def account_id(self) -> str:
        """The 12-digit AWS account id of the role."""
        return self.role_arn.split(":")[4]

    @property
    def name(self) -> str:
        """The role's name: the last segment of its path."""
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def partition(self) -> str:
        """The AWS partition of the role: ``aws``, ``aws-us-gov``, ``aws-cn``, ..."""
        return self.role_arn.split(":")[1]


@dataclass(frozen=True)
class Assertion:
    """What the tool needs from a successful SAMLResponse."""

    saml_response: str  # standard base64 of the XML document, exactly what STS takes
    status: str
    issuer: str | None
    roles: tuple[Role, ...]  # IdP order, duplicates dropped
    session_name: str | None
    session_duration: int | None
    not_on_or_after: datetime | None  # tz-aware UTC
    destination: str | None


def decode_saml_response(text: str | bytes) -> str:
    """Normalise a captured SAMLResponse to the standard base64 STS AssumeRoleWithSAML takes.

    Accepts base64 (with or without padding, with line breaks, URL-safe alphabet), the same
    URL-encoded (``%2B``, spaces for ``+``, a whole ``SAMLResponse=...&RelayState=...`` form
    body) and raw XML. Raises SamlError when the input is empty, too large, or neither.
    """
    return base64.b64encode(_xml_bytes(text)).decode("ascii")


def parse_saml_response(
    text: str | bytes, *, now: datetime | None = None, check_expiry: bool = True
) -> Assertion:
    """Parse a SAMLResponse (any form :func:`decode_saml_response` accepts) into an Assertion.

    ``now`` (tz-aware, default: the current UTC time) is compared with the earliest
    NotOnOrAfter unless ``check_expiry`` is false. Raises SamlError when the input is not a
    SAMLResponse, carries a DTD or entities, is unsuccessful, encrypted or expired, or has a
    role value or SessionDuration that cannot be used. Raises ValueError for a naive ``now``.
    """
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    xml = _xml_bytes(text)
    root = _parse_xml(xml)
    if root.tag != f"{_PROTOCOL}Response":
        raise SamlError(
            "The XML is not a SAML 2.0 Response (its root element is "
            f"<{_local_name(root.tag)}>); capture the SAMLResponse posted to AWS."
        )
    status = _check_status(root)
    assertion = _single_assertion(root)
    attributes = _attributes(assertion)
    roles = _roles(attributes.get(ROLE_ATTRIBUTE, []))
    encrypted = f"{_ASSERTION}AttributeStatement/{_ASSERTION}EncryptedAttribute"
    if not roles and assertion.find(encrypted) is not None:
        raise SamlError(
            "The identity provider encrypts the SAML attributes, so the AWS roles cannot be "
            "read; configure it not to encrypt attributes for the AWS application."
        )
    not_on_or_after = _not_on_or_after(assertion)
    if check_expiry and not_on_or_after is not None and not_on_or_after <= now:
        raise SamlError(
            f"The SAML assertion expired at {format_timestamp(not_on_or_after)} but this "
            f"computer's clock says it is {format_timestamp(now)}; sign in again, and if you "
            "just did, check the clock for "
            "skew against the identity provider."
        )
    issuer = (
        _text(root.find(f"{_ASSERTION}Issuer"))
        or _text(assertion.find(f"{_ASSERTION}Issuer"))
        or None
    )
    result = Assertion(
        saml_response=base64.b64encode(xml).decode("ascii"),
        status=status,
        issuer=issuer,
        roles=roles,
        session_name=_first(attributes.get(ROLE_SESSION_NAME_ATTRIBUTE, [])),
        session_duration=_session_duration(attributes.get(SESSION_DURATION_ATTRIBUTE, [])),
        not_on_or_after=not_on_or_after,
        destination=root.get("Destination") or _recipient(assertion),
    )
    _log.debug(
        "SAML response parsed: %d role(s), NotOnOrAfter %s",
        len(roles),
        format_timestamp(not_on_or_after) if not_on_or_after else "absent",
    )
    return result


def _xml_bytes(text: str | bytes) -> bytes:
    """Return the XML document bytes behind any accepted form of the input."""
    if len(text) > _MAX_INPUT_CHARS:
        raise _too_large(len(text))
    if isinstance(text, bytes):
        if _looks_like_xml(text):
            # Strip only when the encoding is ASCII-compatible; UTF-16 must keep its byte pairs.
            return _checked_size(text if b"\x00" in text[:4] else text.strip())
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise SamlError(_NEITHER) from None
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise SamlError("The SAML response is empty.")
    if stripped.startswith("<"):
        return _checked_size(_encode_xml_text(stripped))
    # Trailing spaces are kept for now: they may be '+' signs a form decoder turned into spaces.
    return _checked_size(_xml_from_encoded(text.lstrip().lstrip("\ufeff")))


def _xml_from_encoded(text: str) -> bytes:
    """Decode URL-/form-encoded or plain base64 to the XML bytes; SamlError if it is not that."""
    value = _unwrap_url_encoding(text)
    core = value.rstrip(" ")
    trailing = len(value) - len(core)
    core = core.replace(" ", "+")
    # A final '+' (a third of all responses end so) becomes a space after form decoding, which
    # looks like stray whitespace from a paste; the reading that ends the document wins.
    decoded: list[bytes] = []
    for plus in range(min(trailing, 3), -1, -1):
        try:
            xml = _decode_base64(core + "+" * plus)
        except SamlError:
            continue
        if _looks_like_xml(xml):
            if xml.rstrip().endswith(b">"):
                return xml
            decoded.append(xml)
    if not decoded:
        raise SamlError(_NEITHER)
    return decoded[-1]  # none is complete: the parser will say where it breaks


def _unwrap_url_encoding(text: str) -> str:
    """Undo form- and percent-encoding and line wrapping, leaving base64 (maybe with spaces)."""
    query = _form_query(text)
    if query is not None:
        fields = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        text = fields.get("SAMLResponse", "")
    # Copied values are sometimes encoded twice (%252B); base64 itself never contains '%'.
    for _ in range(3):
        if "%" not in text:
            break
        text = urllib.parse.unquote(text)
    # Line breaks come from MIME-style wrapping; leading spaces can never stand for '+' since
    # base64 of a document starting with '<' (or a byte-order mark) never starts with '+'.
    return re.sub(r"[\r\n\t\f\v]", "", text).lstrip(" ")


def _form_query(text: str) -> str | None:
    """The query part of a form body or URL that carries a SAMLResponse field, else None."""
    start = text.find("SAMLResponse=")
    while start > 0 and text[start - 1] not in "?&":
        start = text.find("SAMLResponse=", start + 1)
    if start < 0:
        return None
    return text[start:] if start == 0 else text[text.rfind("?", 0, start) + 1 :]


def _decode_base64(text: str) -> bytes:
    """Decode base64 whatever its padding; raises SamlError with the 'neither' sentence."""
    body = text.rstrip("=")
    if _BASE64.fullmatch(body) is None:
        if _URLSAFE_BASE64.fullmatch(body) is None:
            raise SamlError(_NEITHER)
        body = body.replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        raise SamlError(_NEITHER)
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SamlError(_NEITHER) from None


def _encode_xml_text(text: str) -> bytes:
    """Encode XML given as text in the encoding it declares (UTF-8 when it declares none)."""
    declared = _XML_ENCODING.match(text)
    encoding = declared.group(1) if declared else "utf-8"
    try:
        return text.encode(encoding)
    except LookupError:
        raise SamlError(
            f"The SAML response declares an unknown character encoding {encoding!r}."
        ) from None
    except UnicodeEncodeError:
        raise SamlError(
            f"The SAML response has characters its declared encoding {encoding!r} cannot hold."
        ) from None


def _looks_like_xml(data: bytes) -> bool:
    head = data[:4]
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")):
        return True
    return data.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def _checked_size(xml: bytes) -> bytes:
    if len(xml) > MAX_XML_BYTES:
        raise _too_large(len(xml))
    return xml


def _too_large(size: int) -> SamlError:
    return SamlError(saml_too_large(size))


def _parse_xml(xml: bytes) -> Element:
    """Parse with every DTD and entity declaration refused; nothing is resolved or fetched."""
    # Imported here: defusedxml re-imports the pure-Python ElementTree (~10 ms), which paths
    # that never see an assertion (--help, the cached credential_process) should not pay.
    from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
    from defusedxml.ElementTree import (  # type: ignore[import-untyped]
        ParseError,
        fromstring,
    )

    try:
        root: Element = fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise SamlError(
            "The SAML response is refused: it contains a DTD or entity declarations, which no "
            "identity provider sends and which can be used to attack the XML parser."
        ) from None
    except ParseError as exc:
        line, column = exc.position
        raise SamlError(
            f"The SAML response is not well-formed XML (line {line}, column {column}); "
            "it was probably cut off or altered while being copied."
        ) from None
    except (ValueError, LookupError):  # an encoding that is unknown or that expat cannot read
        raise SamlError(
            "The SAML response is XML in a character encoding that cannot be read."
        ) from None
    return root


def _check_status(root: Element) -> str:
    """Return the top-level status code, or raise SamlError naming a non-Success status."""
    code = root.find(f"{_PROTOCOL}Status/{_PROTOCOL}StatusCode")
    value = (code.get("Value") or "").strip() if code is not None else ""
    if not value:
        raise SamlError("The SAML response has no status code, so it is not usable.")
    if value == STATUS_SUCCESS:
        return value
    shown = _short_status(value)
    sub = code.find(f"{_PROTOCOL}StatusCode") if code is not None else None
    if sub is not None and sub.get("Value"):
        shown += f"/{_short_status(sub.get('Value', ''))}"
    message = " ".join(_text(root.find(f"{_PROTOCOL}Status/{_PROTOCOL}StatusMessage")).split())
    detail = f": {_clip(message)!r}" if message else " and no message"
    raise SamlError(f"The identity provider answered with status {shown}{detail}.")


def _single_assertion(root: Element) -> Element:
    """Return the first plain Assertion of the Response; SamlError for none or encrypted."""
    assertion = root.find(f"{_ASSERTION}Assertion")
    if assertion is not None:
        return assertion
    if root.find(f"{_ASSERTION}EncryptedAssertion") is not None:
        raise SamlError(
            "The identity provider encrypts its SAML assertions, so the AWS roles cannot be "
            "read; configure it not to encrypt assertions for the AWS application."
        )
    raise SamlError("The SAML response is successful but contains no assertion.")


def _attributes(assertion: Element) -> dict[str, list[str]]:
    """Map attribute Name to its values, across every Attribute element of that name.

    Keycloak emits one Attribute per role; AD FS and Okta one Attribute with many values.
    """
    found: dict[str, list[str]] = {}
    for attribute in assertion.iterfind(f"{_ASSERTION}AttributeStatement/{_ASSERTION}Attribute"):
        name = (attribute.get("Name") or "").strip()
        values = found.setdefault(name, [])
        for value in attribute.iterfind(f"{_ASSERTION}AttributeValue"):
            values.append("".join(value.itertext()).strip())
    return found


def _roles(values: list[str]) -> tuple[Role, ...]:
    """Build the Roles from Role attribute values, in IdP order and without duplicates."""
    roles: dict[Role, None] = {}
    for value in values:
        if not value:
            continue  # some IdPs emit an empty value for an unmapped group; it grants nothing
        roles.setdefault(_role(value), None)
    return tuple(roles)


def _role(value: str) -> Role:
    parts = [part.strip() for part in value.split(",")]
    if len(parts) == 2:
        first, second = parts
        if _ROLE_ARN.fullmatch(first) and _PROVIDER_ARN.fullmatch(second):
            return Role(role_arn=first, principal_arn=second)
        if _PROVIDER_ARN.fullmatch(first) and _ROLE_ARN.fullmatch(second):
            return Role(role_arn=second, principal_arn=first)
    raise SamlError(
        f"The SAML assertion has a Role value that is not a role ARN and a saml-provider ARN "
        f"separated by a comma: {_clip(value)!r}; fix the AWS role mapping at the IdP."
    )


def _first(values: list[str]) -> str | None:
    return next((value for value in values if value), None)


def _session_duration(values: list[str]) -> int | None:
    value = _first(values)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or int(value) == 0:
        raise SamlError(
            f"The SAML assertion's SessionDuration {_clip(value)!r} is not a positive whole "
            "number of seconds; fix it at the IdP."
        )
    return int(value)


def _not_on_or_after(assertion: Element) -> datetime | None:
    """The earliest NotOnOrAfter of the bearer confirmation data and the Conditions."""
    carriers = list(
        assertion.iterfind(
            f"{_ASSERTION}Subject/{_ASSERTION}SubjectConfirmation/"
            f"{_ASSERTION}SubjectConfirmationData"
        )
    )
    conditions = assertion.find(f"{_ASSERTION}Conditions")
    if conditions is not None:
        carriers.append(conditions)
    times = [_xs_datetime(c.get("NotOnOrAfter", "")) for c in carriers if c.get("NotOnOrAfter")]
    return min(times, default=None)


def _recipient(assertion: Element) -> str | None:
    for data in assertion.iterfind(
        f"{_ASSERTION}Subject/{_ASSERTION}SubjectConfirmation/{_ASSERTION}SubjectConfirmationData"
    ):
        if data.get("Recipient"):
            return data.get("Recipient")
    return None


def _xs_datetime(value: str) -> datetime:
    """Parse an xs:dateTime (any fraction length, Z, offset or none: SAML times are UTC)."""
    match = _XS_DATETIME.fullmatch(value.strip())
    try:
        if match is None:
            raise ValueError(value)
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        tz = timezone.utc
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
    except ValueError:
        raise SamlError(
            f"The SAML assertion has an invalid NotOnOrAfter time {_clip(value)!r}."
        ) from None
    return moment.astimezone(timezone.utc)


def _short_status(uri: str) -> str:
    return uri.strip().removeprefix(_STATUS_PREFIX)


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
