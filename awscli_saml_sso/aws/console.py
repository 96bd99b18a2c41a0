"""The AWS console, signed in with temporary keys: the federation sign-in token flow.

1. GET `<federation>?Action=getSigninToken&SessionDuration=N&Session=<JSON of the keys>`
   answers `{"SigninToken": "..."}`;
2. `<federation>?Action=login&Destination=<console>&SigninToken=<token>` signs the browser in.

Each partition has its own sign-in and console hosts. No emulator implements the federation
endpoint; ASS_FEDERATION_URL points the first step elsewhere (tests use a loopback stand-in).
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from awscli_saml_sso.errors import StsError, UsageError
from awscli_saml_sso.model import Keys, is_loopback, partition_of

log = logging.getLogger(__name__)

#: What the federation endpoint accepts as SessionDuration, and the most for chained roles.
MIN_DURATION, MAX_DURATION, CHAINED_MAX_DURATION = 900, 43200, 3600
DEFAULT_DURATION = 3600
TIMEOUT = 30.0
FEDERATION_URL_VARIABLE = "ASS_FEDERATION_URL"


@dataclass(frozen=True)
class Partition:
    """Where the console of one AWS partition signs people in."""

    federation_url: str
    console_url: str


PARTITIONS = {
    "aws": Partition("https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/"),
    "aws-us-gov": Partition(
        "https://signin.amazonaws-us-gov.com/federation", "https://console.amazonaws-us-gov.com/"
    ),
    "aws-cn": Partition("https://signin.amazonaws.cn/federation", "https://console.amazonaws.cn/"),
}


def partition_for(role_arn: str, env: Mapping[str, str]) -> Partition:
    """The role's partition's hosts; ASS_FEDERATION_URL replaces the federation endpoint
    (https, or http on loopback only: the request carries the keys).
    """
    partition = partition_of(role_arn)
    if partition not in PARTITIONS:
        raise UsageError(f"the AWS console of the {partition!r} partition is not known")
    chosen = PARTITIONS[partition]
    override = federation_override(env)
    return Partition(override, chosen.console_url) if override else chosen


def federation_override(env: Mapping[str, str]) -> str | None:
    """ASS_FEDERATION_URL when set; UsageError unless https, or http on loopback."""
    override = (env.get(FEDERATION_URL_VARIABLE) or "").strip()
    if not override:
        return None
    parts = urllib.parse.urlsplit(override)
    if not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))):
        raise UsageError(f"{FEDERATION_URL_VARIABLE} must be an https URL (http only on loopback)")
    return override


def console_duration(duration: int | None, *, chained: bool) -> tuple[int, str | None]:
    """The SessionDuration to ask for, and a note when it was lowered for a chained role."""
    if duration is None:
        return DEFAULT_DURATION, None
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise UsageError(
            f"--duration {duration} is outside what the AWS console accepts "
            f"({MIN_DURATION} to {MAX_DURATION} seconds)"
        )
    if chained and duration > CHAINED_MAX_DURATION:
        return CHAINED_MAX_DURATION, (
            f"--duration {duration} is more than AWS allows for a console session of a chained "
            f"role (one hour); asking for {CHAINED_MAX_DURATION}"
        )
    return duration, None


def signin_token(keys: Keys, partition: Partition, duration: int) -> str:
    """Trade the keys for a sign-in token (valid 15 minutes). Raises StsError."""
    session = json.dumps(
        {
            "sessionId": keys.access_key_id,
            "sessionKey": keys.secret_access_key,
            "sessionToken": keys.session_token,
        }
    )
    query = urllib.parse.urlencode(
        {"Action": "getSigninToken", "SessionDuration": str(duration), "Session": session}
    )
    # urllib.request loads http.client and ssl: only here (`as`: `urllib` stays the module's).
    import urllib.error as url_error
    import urllib.request as url_request

    where = urllib.parse.urlsplit(partition.federation_url).netloc
    # https, or http on loopback only (partition_for): no other scheme reaches here.
    request = url_request.Request(  # noqa: S310
        f"{partition.federation_url}?{query}", headers={"Accept": "application/json"}
    )
    try:
        with url_request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            document = json.loads(answer.read(1_000_000))
        return str(document["SigninToken"])
    except url_error.HTTPError as exc:
        raise StsError(
            f"the AWS sign-in endpoint {where} refused the console sign-in token request "
            f"(HTTP {exc.code}); the keys may have expired"
        ) from exc
    except (url_error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StsError(f"could not reach the AWS sign-in endpoint {where}: {reason}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise StsError(
            f"the AWS sign-in endpoint {where} answered without a sign-in token"
        ) from exc


def login_url(token: str, partition: Partition, destination: str | None = None) -> str:
    """The URL that signs a browser in to the console (valid as long as the token)."""
    query = urllib.parse.urlencode(
        {
            "Action": "login",
            "Destination": destination or partition.console_url,
            "SigninToken": token,
        }
    )
    return f"{partition.federation_url}?{query}"
