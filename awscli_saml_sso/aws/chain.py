"""Role chaining: a signed sts:AssumeRole with the keys the SAML sign-in gave.

AWS caps a chained session at one hour, whatever the second role's MaxSessionDuration, so the
requested duration is clamped here and the person is told. boto3 is imported inside the
call. This is the one signed STS call on boto3; it keeps its own small client so that the
unsigned SAML call and the identity check can change their HTTP client without touching it.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import timezone
from typing import Any

from awscli_saml_sso.aws.saml import is_role_arn
from awscli_saml_sso.aws.sts import StsTarget
from awscli_saml_sso.errors import StsError, UsageError
from awscli_saml_sso.model import Keys

log = logging.getLogger(__name__)

#: The most AWS grants a session reached by role chaining.
CHAINED_MAX_DURATION = 3600
#: What STS accepts as RoleSessionName and ExternalId.
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")


def check_chain_options(chain_role_arn: str | None, external_id: str | None) -> None:
    """Raise UsageError for a chained role ARN or external id STS would refuse."""
    if chain_role_arn is None:
        if external_id is not None:
            raise UsageError("--external-id only makes sense with --chain-role-arn")
        return
    if not is_role_arn(chain_role_arn.strip()):
        raise UsageError(f"--chain-role-arn {chain_role_arn!r} is not an IAM role ARN")
    if external_id is not None and not _EXTERNAL_ID.fullmatch(external_id):
        raise UsageError(
            "--external-id must be 2 to 1224 letters, digits or any of _+=,.@:/- (as STS wants)"
        )


def chained_duration(duration: int | None) -> tuple[int, str | None]:
    """The DurationSeconds of the chained call, and a note when --duration was lowered."""
    if duration is None:
        return CHAINED_MAX_DURATION, None
    if duration > CHAINED_MAX_DURATION:
        return CHAINED_MAX_DURATION, (
            f"--duration {duration} is more than AWS allows for a chained role session "
            f"(one hour); asking for {CHAINED_MAX_DURATION}"
        )
    return duration, None


def session_name(source: str | None) -> str:
    """The RoleSessionName carried over from the SAML session, made acceptable to STS."""
    cleaned = re.sub(r"[^\w+=,.@-]", "-", source or "")[:64]
    return cleaned if _SESSION_NAME.fullmatch(cleaned) else "awscli_saml_sso"


def _client(target: StsTarget, source: Keys) -> Any:
    """A signed STS client with `source`'s keys, blind to the person's AWS files and profile
    variables (as the SAML call is): a corrupt ~/.aws must not break a chained sign-in.
    """
    import boto3.session
    import botocore.session
    from botocore.config import Config
    from botocore.configprovider import ConstantProvider

    core = botocore.session.Session()
    store = core.get_component("config_store")
    for setting, value in (
        ("profile", None),
        ("config_file", os.devnull),
        ("credentials_file", os.devnull),
        ("sts_regional_endpoints", "regional"),
    ):
        store.set_config_provider(setting, ConstantProvider(value))
    config = Config(connect_timeout=10, read_timeout=30, retries={"mode": "standard"})
    return boto3.session.Session(botocore_session=core).client(
        "sts",
        region_name=target.region,
        endpoint_url=target.endpoint_url,
        config=config,
        aws_access_key_id=source.access_key_id,
        aws_secret_access_key=source.secret_access_key,
        aws_session_token=source.session_token,
    )


def assume_role(
    source: Keys,
    role_arn: str,
    target: StsTarget,
    *,
    name: str,
    duration: int,
    external_id: str | None = None,
) -> Keys:
    """Assume `role_arn` with `source`'s keys (signed sts:AssumeRole). Raises StsError."""
    from botocore.exceptions import BotoCoreError, ClientError

    what = f"AssumeRole for {role_arn} (role chaining from {source.role_arn or 'the SAML role'})"
    where = target.endpoint_url or f"STS in {target.region}"
    extra: dict[str, Any] = {"ExternalId": external_id} if external_id else {}
    try:
        answer = _client(target, source).assume_role(
            RoleArn=role_arn, RoleSessionName=name, DurationSeconds=duration, **extra
        )
        keys = answer["Credentials"]
        return Keys(
            access_key_id=keys["AccessKeyId"],
            secret_access_key=keys["SecretAccessKey"],
            session_token=keys["SessionToken"],
            expiration=keys["Expiration"].astimezone(timezone.utc),
            role_arn=role_arn,
            principal_arn=source.principal_arn,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = error.get("Message") or str(exc)
        raise StsError(
            f"{what} was refused by {where}: {message} ({error.get('Code', 'error')})"
        ) from exc
    except BotoCoreError as exc:
        log.debug("%s failed", what, exc_info=True)
        raise StsError(f"{what} failed: could not reach {where}: {exc}") from exc
    except (KeyError, AttributeError, ValueError) as exc:
        raise StsError(f"{where} answered AssumeRole without usable keys") from exc
