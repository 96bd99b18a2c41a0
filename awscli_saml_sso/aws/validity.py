"""When a profile this tool wrote can be kept instead of signing in again.

Light on purpose (timestamps and errors only): the console script's quick path (`main`)
answers a "still valid" run with it before the command line loads; `flow.still_valid` and
`flow.preflight` use the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from awscli_saml_sso.errors import UsageError
from awscli_saml_sso.timestamps import local_and_utc, parse_timestamp

#: What a profile written by this tool records besides the keys: where they came from.
IDP_KEY = "x_idp_url"
ENDPOINT_KEY = "x_sts_endpoint"
EXPIRES_KEY = "x_security_token_expires"
ROLE_KEY = "x_role_arn"
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
DEFAULT_ENDPOINT = "default"  # AWS's own STS endpoint for the role's region
FROM_FILE = "saml-response-file"  # an assertion given with --saml-response-file


def check_region(region: str) -> str:
    """Return `region` if it looks like an AWS region name, else raise UsageError."""
    if not REGION.fullmatch(region):
        raise UsageError(f"{region!r} is not an AWS region name (e.g. eu-west-1)")
    return region


def origin_values(endpoint_url: str | None, idp_url: str | None) -> dict[str, str]:
    """The IdP and STS endpoint recorded beside the keys, for `kept_until` to compare."""
    return {
        IDP_KEY: idp_url or FROM_FILE,
        ENDPOINT_KEY: (endpoint_url or "").strip() or DEFAULT_ENDPOINT,
    }


def kept_until(
    profile: Mapping[str, str] | None,
    *,
    role_arn: str | None,
    endpoint_url: str | None,
    idp_url: str | None,
    min_remaining: int,
    now: datetime | None = None,
) -> datetime | None:
    """The expiry of the profile's credentials if they can be kept, else None.

    Kept only when they came from this tool, have more than `min_remaining` seconds left,
    are for `role_arn` (with none, for the role chosen last time), came from the same STS
    endpoint (an emulator's keys never count for AWS, nor the other way round) and, when
    an IdP is named (`idp_url`), from that IdP.
    """
    if not profile or EXPIRES_KEY not in profile:
        return None
    if role_arn and profile.get(ROLE_KEY) != role_arn.strip():
        return None
    recorded = origin_values(endpoint_url, idp_url)
    if profile.get(ENDPOINT_KEY, DEFAULT_ENDPOINT) != recorded[ENDPOINT_KEY]:
        return None
    if idp_url and profile.get(IDP_KEY, idp_url) != idp_url:
        return None
    try:
        expires = parse_timestamp(profile[EXPIRES_KEY])
    except ValueError:
        return None
    now = now or datetime.now(timezone.utc)
    return expires if expires - now > timedelta(seconds=min_remaining) else None


def nothing_to_do(profile_name: str, expires: datetime) -> str:
    """What a run says when the profile's credentials are kept."""
    return (
        f"The {profile_name} profile still holds valid credentials until "
        f"{local_and_utc(expires)}; nothing to do (use --force to sign in anyway)."
    )
