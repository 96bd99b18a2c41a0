"""The boto3-free STS client against the rig's emulator (moto): a real assertion from the
rig's Keycloak is traded for keys, the keys are checked with a signed GetCallerIdentity, and
the emulator's own refusals come back as one sentence.

moto checks SigV4 signatures loosely (it looks the access key up, and does not recompute the
signature), so the signature itself is proven against botocore's signer in
tests/unit/test_sts.py.
"""

from __future__ import annotations

import dataclasses

import pytest
from support.rig import Rig

from awscli_saml_sso.aws import sts
from awscli_saml_sso.aws.saml import parse_saml_response
from awscli_saml_sso.errors import StsError


def test_assume_role_and_caller_identity_against_the_emulator(rig: Rig) -> None:
    assertion = parse_saml_response(rig.saml_response("aws_user"))
    role = next(r for r in assertion.roles if r.role_arn == rig.role_user_arn)
    target = sts.StsTarget("us-east-1", rig.endpoint_url)
    notes: list[str] = []
    keys = sts.assume_role_with_saml(assertion, role, target, duration=3600, notify=notes.append)
    assert keys.access_key_id and keys.session_token and keys.role_arn == role.role_arn
    assert keys.expiration.tzinfo is not None and notes == []
    arn = sts.caller_identity(keys, target)
    assert ":assumed-role/" in arn or arn.startswith("arn:aws:")


def test_the_emulators_refusal_is_one_sentence(rig: Rig) -> None:
    assertion = parse_saml_response(rig.saml_response("aws_user"))
    role = next(r for r in assertion.roles if r.role_arn == rig.role_user_arn)
    target = sts.StsTarget("us-east-1", rig.endpoint_url)
    broken = dataclasses.replace(assertion, saml_response="bm90IFNBTUw=")
    with pytest.raises(StsError) as info:
        sts.assume_role_with_saml(broken, role, target, duration=3600, notify=lambda _: None)
    assert info.value.exit_code == 6
    assert "AssumeRoleWithSAML for" in info.value.message
