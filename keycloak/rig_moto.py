#!/usr/bin/env python3
"""moto_server for the rig, with one adaptation: a multi-valued Role attribute.

A SAML Role attribute usually carries one ``AttributeValue`` per role (LemonLDAP::NG does
so; AWS accepts it and assumes the pair that names the requested RoleArn). moto 5.2.5
reads only a single value and answers HTTP 500 otherwise. Before moto reads the
assertion, this keeps only the Role value naming the requested role, as AWS would choose
it; nothing else changes. Used by rig.py only (test rig), never by the tool.

Usage: rig_moto.py [moto_server arguments]
"""

from __future__ import annotations

import base64
import sys
from typing import Any
from xml.etree import ElementTree

from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

ROLE = "https://aws.amazon.com/SAML/Attributes/Role"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def keep_requested_role(assertion_b64: str, role_arn: str) -> str:
    """The assertion with its Role attribute reduced to the value naming ``role_arn``."""
    xml = base64.b64decode(assertion_b64)
    root = fromstring(xml)
    changed = False
    for attribute in root.iter(f"{{{SAML}}}Attribute"):
        values = attribute.findall(f"{{{SAML}}}AttributeValue")
        if attribute.get("Name") != ROLE or len(values) < 2:
            continue
        chosen = [v for v in values if role_arn in (v.text or "").split(",")] or values[:1]
        for value in values:
            if value is not chosen[0]:
                attribute.remove(value)
        changed = True
    if not changed:
        return assertion_b64
    return base64.b64encode(ElementTree.tostring(root)).decode()


def patch() -> None:
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role_with_saml

    def assume_role_with_saml(self: STSBackend, **kwargs: Any) -> Any:
        kwargs["saml_assertion"] = keep_requested_role(
            kwargs["saml_assertion"], str(kwargs.get("role_arn") or "")
        )
        return original(self, **kwargs)

    STSBackend.assume_role_with_saml = assume_role_with_saml  # type: ignore[method-assign]


def main() -> None:
    patch()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
