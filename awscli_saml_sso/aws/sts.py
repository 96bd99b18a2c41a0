"""STS AssumeRoleWithSAML (unsigned) and the GetCallerIdentity check of the new keys.

Both go through aws/sts_query.py, without boto3 (its import alone costs more than a warm
sign-in). Calls that need more of the SDK use `_client`/`_call`: boto3/botocore are imported
inside them, so the fast paths of the CLI never load them. The botocore session built there
ignores the person's AWS files and profile variables, so a
corrupt ~/.aws/credentials or an AWS_PROFILE naming a profile that does not exist yet cannot
break a sign-in that needs no local keys.
"""

from __future__ import annotations

import functools
import logging
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.aws import sts_query
from awscli_saml_sso.aws.saml import Assertion, Role
from awscli_saml_sso.errors import StsError
from awscli_saml_sso.model import Keys
from awscli_saml_sso.timestamps import parse_timestamp

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

DEFAULT_DURATION = 3600
#: What STS accepts for DurationSeconds at all.
MIN_DURATION, MAX_DURATION = 900, 43200


@dataclass(frozen=True)
class StsTarget:
    """Where STS calls go: always a regional endpoint unless an explicit URL is given; how:
    through `proxy` (a URL, possibly with Basic credentials) or direct, and which CA bundle
    verifies TLS (None: botocore's own).
    """

    region: str
    endpoint_url: str | None = None
    proxy: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None

    @property
    def url(self) -> str:
        """The endpoint the calls go to (the one the routing rule is asked about)."""
        if self.endpoint_url:
            return self.endpoint_url
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        return f"https://sts.{self.region}.{suffix}"


def requested_duration(assertion: Assertion, duration: int | None) -> tuple[int, str | None]:
    """The DurationSeconds to ask for, and a note for the person when it was lowered.

    `--duration`, else the assertion's SessionDuration, else 3600; never above SessionDuration,
    which is the most the IdP allows for this session.
    """
    ceiling = assertion.session_duration
    if ceiling is not None:
        ceiling = min(max(ceiling, MIN_DURATION), MAX_DURATION)
    if duration is None:
        return (ceiling or DEFAULT_DURATION), None
    if ceiling is not None and duration > ceiling:
        return ceiling, (
            f"--duration {duration} is more than the {ceiling} seconds the identity provider "
            f"allows (SessionDuration); asking for {ceiling}"
        )
    return duration, None


def _query(
    what: str, target: StsTarget, action: str, params: dict[str, str], keys: Keys | None = None
) -> dict[str, str]:
    """One STS call without boto3 (aws/sts_query.py), its failures worded as `_call` words
    botocore's: a refusal quotes AWS's message, anything else says where.
    """
    where = target.endpoint_url or f"STS in {target.region}"
    try:
        return sts_query.call(
            action,
            params,
            region=target.region,
            endpoint_url=target.endpoint_url,
            keys=keys,
            proxy=target.proxy,
            ca_bundle=target.ca_bundle,
        )
    except sts_query.QueryError as exc:
        if exc.kind == "untrusted":
            raise StsError(
                f"{what} failed: the certificate of {urllib.parse.urlsplit(target.url).hostname} "
                "is not trusted; if your company inspects TLS, set AWS_CA_BUNDLE (or ca_bundle "
                "in the profile's config) to a PEM file holding its CA"
            ) from exc
        if exc.kind == "proxy":
            proxy = urllib.parse.urlsplit(target.proxy or "")
            raise StsError(
                f"{what} failed: the proxy http://{proxy.hostname}:{proxy.port} did not let the "
                f"call through to {where} ({exc.detail})"
            ) from exc
        if exc.kind == "refused":
            raise StsError(f"{what} was refused by {where}: {exc.detail} ({exc.code})") from exc
        if exc.kind == "not-sts":
            raise StsError(f"{what} failed: {where} did not answer like STS") from exc
        if exc.kind == "bad-endpoint":
            raise StsError(
                f"{what} failed: {where} is not a usable STS endpoint ({exc.detail})"
            ) from exc
        log.debug("%s failed", what, exc_info=True)
        raise StsError(f"{what} failed: could not reach {where}: {exc.detail}") from exc


@functools.lru_cache(maxsize=1)
def _session() -> Any:
    """One boto3 session for the run, blind to the person's AWS files and profile variables.

    Building a session loads botocore's data files; sharing it makes every further client
    (each role of --all-roles, the GetCallerIdentity check) cheap.
    """
    import boto3.session
    import botocore.session
    from botocore.configprovider import ConstantProvider

    core = botocore.session.Session()
    store = core.get_component("config_store")
    for name, value in (
        ("profile", None),
        ("config_file", os.devnull),
        ("credentials_file", os.devnull),
        ("sts_regional_endpoints", "regional"),
    ):
        store.set_config_provider(name, ConstantProvider(value))
    return boto3.session.Session(botocore_session=core)


def _client(service: str, target: StsTarget, credentials: Keys | None) -> Any:
    """A client for `target`: unsigned without credentials, else signed with them."""
    from botocore import UNSIGNED
    from botocore.config import Config

    config = Config(
        connect_timeout=10,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 2},
        signature_version=UNSIGNED if credentials is None else None,
        # Always explicit, so the one routing rule (network.Router) decides: empty is direct.
        proxies={"http": target.proxy, "https": target.proxy} if target.proxy else {},
    )
    keys: dict[str, str] = {}
    if credentials is not None:
        keys = {
            "aws_access_key_id": credentials.access_key_id,
            "aws_secret_access_key": credentials.secret_access_key,
            "aws_session_token": credentials.session_token,
        }
    return _session().client(
        service,
        region_name=target.region,
        endpoint_url=target.endpoint_url,
        config=config,
        verify=target.ca_bundle,
        **keys,
    )


def _call(what: str, target: StsTarget, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Build the client and run one STS call inside `call`, turning every botocore error
    into one StsError sentence: a refusal quotes AWS's message, anything else says where.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        ParamValidationError,
        ProxyConnectionError,
        SSLError,
    )
    from botocore.parsers import ResponseParserError

    where = target.endpoint_url or f"STS in {target.region}"
    try:
        return call()
    except SSLError as exc:
        log.debug("%s failed", what, exc_info=True)
        raise StsError(
            f"{what} failed: the certificate of {urllib.parse.urlsplit(target.url).hostname} "
            "is not trusted; if your company inspects TLS, set AWS_CA_BUNDLE (or ca_bundle in "
            "the profile's config) to a PEM file holding its CA"
        ) from exc
    except ProxyConnectionError as exc:
        log.debug("%s failed", what, exc_info=True)
        proxy = urllib.parse.urlsplit(target.proxy or "")
        raise StsError(
            f"{what} failed: the proxy http://{proxy.hostname}:{proxy.port} did not let the "
            f"call through to {where}"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        message = error.get("Message") or str(exc)
        raise StsError(f"{what} was refused by {where}: {message} ({code})") from exc
    except ParamValidationError as exc:
        raise StsError(f"{what} was refused before sending: {exc}") from exc
    except (ResponseParserError, KeyError) as exc:  # parsers raise KeyError on odd XML
        raise StsError(f"{what} failed: {where} did not answer like STS") from exc
    except (EndpointConnectionError, BotoCoreError) as exc:
        log.debug("%s failed", what, exc_info=True)
        raise StsError(f"{what} failed: could not reach {where}: {exc}") from exc
    except ValueError as exc:  # e.g. an endpoint URL botocore cannot use
        raise StsError(f"{what} failed: {where} is not a usable STS endpoint ({exc})") from exc


def _duration_too_long(exc: StsError) -> bool:
    text = str(exc.message)
    return "DurationSeconds" in text and ("exceeds" in text or "MaxSessionDuration" in text)


def assume_role_with_saml(
    assertion: Assertion,
    role: Role,
    target: StsTarget,
    *,
    duration: int,
    notify: Callable[[str], None],
) -> Keys:
    """Trade the assertion for temporary keys for `role`.

    If STS says `duration` exceeds the role's maximum, retries once with 3600 seconds and
    tells the person through `notify`. Raises StsError.
    """

    def attempt(seconds: int) -> dict[str, str]:
        return _query(
            f"AssumeRoleWithSAML for {role.role_arn}",
            target,
            "AssumeRoleWithSAML",
            {
                "RoleArn": role.role_arn,
                "PrincipalArn": role.principal_arn,
                "SAMLAssertion": assertion.saml_response,
                "DurationSeconds": str(seconds),
            },
        )

    try:
        answer = attempt(duration)
    except StsError as exc:
        if duration == DEFAULT_DURATION or not _duration_too_long(exc):
            raise
        notify(
            f"{duration} seconds is more than {role.name} allows (its MaxSessionDuration); "
            f"retrying with {DEFAULT_DURATION} seconds"
        )
        answer = attempt(DEFAULT_DURATION)
    try:
        return Keys(
            access_key_id=answer["AccessKeyId"],
            secret_access_key=answer["SecretAccessKey"],
            session_token=answer["SessionToken"],
            expiration=parse_timestamp(answer["Expiration"]),
            role_arn=role.role_arn,
            principal_arn=role.principal_arn,
        )
    except (KeyError, AttributeError, ValueError) as exc:
        where = target.endpoint_url or f"STS in {target.region}"
        raise StsError(f"{where} answered AssumeRoleWithSAML without usable keys") from exc


def caller_identity(credentials: Keys, target: StsTarget) -> str:
    """The ARN STS reports for the new keys (proves they work). Raises StsError."""
    answer = _query("GetCallerIdentity", target, "GetCallerIdentity", {}, credentials)
    if not answer.get("Arn"):
        where = target.endpoint_url or f"STS in {target.region}"
        raise StsError(f"GetCallerIdentity failed: {where} did not answer like STS")
    return answer["Arn"]
