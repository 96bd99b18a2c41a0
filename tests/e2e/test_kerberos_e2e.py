"""Integrated sign-in (Kerberos / SPNEGO): the installed CLI, a real KDC, the rig's Keycloak.

A private MIT KDC issues the person's ticket; a Keycloak realm made for this run (unique
name, removed afterwards) accepts SPNEGO with the KDC's keytab, then falls back to its form.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.corpnet import KRB_USER, Kdc, kerberos_realm, run_kdc
from support.rig import Rig
from support.sandbox import Sandbox, assert_nothing_left

pytestmark = [pytest.mark.rig, pytest.mark.browser]

NICK = "krb"
REALM_FILE = Path(__file__).resolve().parents[2] / "keycloak" / "realm-aws.json"


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kdc]:
    with run_kdc(tmp_path_factory.mktemp("kdc")) as running:
        yield running


@pytest.fixture(scope="module")
def kerberos_login_url(rig: Rig, kdc: Kdc) -> Iterator[str]:
    """A fresh Keycloak realm whose browser flow is cookie, Kerberos, then the form."""
    name = f"kerberos-{uuid.uuid4().hex[:8]}"
    admin = f"{rig.keycloak_url}/admin/realms"

    def headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {rig.admin_token()}"}

    created = requests.post(
        admin, json=kerberos_realm(REALM_FILE, name, kdc.keytab), headers=headers(), timeout=60
    )
    assert created.status_code == 201, created.text
    try:
        executions = requests.get(
            f"{admin}/{name}/authentication/flows/browser/executions", headers=headers(), timeout=10
        ).json()
        (kerberos,) = [e for e in executions if e.get("providerId") == "auth-spnego"]
        if kerberos["requirement"] != "ALTERNATIVE":
            kerberos["requirement"] = "ALTERNATIVE"
            changed = requests.put(
                f"{admin}/{name}/authentication/flows/browser/executions",
                json=kerberos,
                headers=headers(),
                timeout=10,
            )
            assert changed.status_code in (202, 204), changed.text
        yield f"{rig.keycloak_url}/realms/{name}/protocol/saml/clients/amazon-aws"
    finally:
        with contextlib.suppress(requests.RequestException):  # a busy Keycloak: left for the rig
            requests.delete(f"{admin}/{name}", headers=headers(), timeout=120)


@pytest.fixture
def user(sandbox: Sandbox, rig: Rig, kdc: Kdc, tmp_path: Path) -> Iterator[Sandbox]:
    sandbox.env.update(
        ASS_ENDPOINT_URL=rig.endpoint_url,
        KRB5_CONFIG=str(kdc.krb5_conf),
        KRB5CCNAME=f"FILE:{tmp_path / 'ccache'}",
    )
    yield sandbox
    assert_nothing_left(sandbox)


def test_ticket_signs_in_without_a_password_on_a_fresh_profile(
    user: Sandbox, rig: Rig, kdc: Kdc, kerberos_login_url: str, tmp_path: Path
) -> None:
    kdc.kinit(tmp_path / "ccache")
    result = user.run(
        [
            *("--idp-nickname", NICK, "--idp-url", kerberos_login_url),
            *("--integrated-auth", "localhost", "--no-prompt", "--timeout", "60"),
        ],
        # Deliberately wrong: had a form been filled, Keycloak would have refused it.
        extra_env={"ASS_PASSWORD": "not-the-password"},
    )
    assert result.returncode == 0, result.stderr
    assert f"assumed-role/Role.User/{KRB_USER}" in result.stdout
    stored = (user.config_dir / "idps.json").read_text()
    assert '"integrated_auth": "localhost"' in stored


def test_without_a_ticket_the_form_comes_back(user: Sandbox, kerberos_login_url: str) -> None:
    result = user.run(
        [
            *("--idp-nickname", NICK, "--idp-url", kerberos_login_url),
            *("--integrated-auth", "localhost", "--no-prompt", "--timeout", "60"),
        ]
    )
    # No ticket: Keycloak's "Kerberos Unsupported" page leads to its form, which asks for a
    # username that nobody may be asked for here.
    assert result.returncode == 2, result.stderr
    assert "the username for krb is needed but prompting is disabled" in result.stderr


def test_wildcards_are_refused(user: Sandbox, kerberos_login_url: str) -> None:
    result = user.run(
        ["--idp-nickname", NICK, "--idp-url", kerberos_login_url, "--integrated-auth", "*"]
    )
    assert result.returncode == 2, result.stderr
    assert "no '*', wildcards or URLs" in result.stderr
