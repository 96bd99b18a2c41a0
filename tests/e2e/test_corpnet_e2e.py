"""Inside a corporate network: the installed CLI as a real process, through a real squid.

The IdP (`idp.corp.test`, https, signed by a private company CA) and the STS endpoint
(`sts.corp.test`, the rig's emulator) have names only squid can resolve, so every sign-in
here that succeeds went through squid, and squid's access log says which requests did.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support.corpnet import (
    IDP_PASSWORD,
    IDP_USER,
    PROXY_PASSWORD,
    PROXY_USER,
    CorpIdP,
    PrivateCA,
    Squid,
    private_ca,
)
from support.rig import Rig
from support.sandbox import Sandbox, assert_nothing_left

pytestmark = [pytest.mark.rig, pytest.mark.browser]

NICK = "corp"


@pytest.fixture(scope="module")
def company_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return private_ca(tmp_path_factory.mktemp("corp-ca"))


@pytest.fixture
def corp_idp(company_ca: PrivateCA, rig: Rig) -> Iterator[CorpIdP]:
    """The company's https login page; it posts a real assertion for the rig's aws_user."""
    with CorpIdP(company_ca, rig.saml_response("aws_user")) as idp:
        yield idp


@pytest.fixture
def user(sandbox: Sandbox, rig: Rig, company_ca: PrivateCA) -> Iterator[Sandbox]:
    """A sandbox that signs in as the company's user; nothing of it may still run after."""
    port = urlsplit(rig.endpoint_url).port
    sandbox.env.update(
        ASS_ENDPOINT_URL=f"http://sts.corp.test:{port}",
        ASS_USERNAME=IDP_USER,
        ASS_PASSWORD=IDP_PASSWORD,
        SSL_CERT_FILE=str(company_ca.cert_pem),
    )
    yield sandbox
    assert_nothing_left(sandbox)


def login(idp: CorpIdP, *extra: str, prompt: bool = False, timeout: int = 40) -> list[str]:
    asking = [] if prompt else ["--no-prompt"]
    return [
        *("--idp-nickname", NICK, "--idp-url", idp.url, *asking),
        *("--timeout", str(timeout), *extra),
    ]


def signed_in(result: subprocess.CompletedProcess[str], rig: Rig) -> None:
    assert result.returncode == 0, result.stderr
    assert "Signed in as arn:aws:sts::" in result.stdout
    assert rig.role_user_arn.rsplit("/", 1)[-1] in result.stdout


def test_the_direct_route_is_blocked() -> None:
    with pytest.raises(OSError):
        socket.getaddrinfo("idp.corp.test", 443)


def test_environment_proxy_and_company_ca(
    user: Sandbox, rig: Rig, squid: Squid, corp_idp: CorpIdP
) -> None:
    user.env.update(HTTPS_PROXY=squid.url, http_proxy=squid.url)
    result = user.run(login(corp_idp))
    signed_in(result, rig)
    assert "Using the proxy settings from HTTPS_PROXY and HTTP_PROXY" in result.stderr
    # The IdP's page, and STS (AssumeRoleWithSAML, GetCallerIdentity) went through squid.
    assert {"idp.corp.test", "sts.corp.test"} <= squid.hosts_seen()
    assert corp_idp.posts == [{"username": IDP_USER, "password": IDP_PASSWORD}]
    # Nothing from the environment is stored with the IdP.
    (entry,) = json.loads((user.config_dir / "idps.json").read_text())
    assert entry.get("proxy") is None


def test_wrong_company_ca_is_refused_with_the_variable_to_set(
    user: Sandbox, squid: Squid, corp_idp: CorpIdP, tmp_path: Path
) -> None:
    other = private_ca(tmp_path / "other", name="Some Other CA")
    user.env.update(HTTPS_PROXY=squid.url, SSL_CERT_FILE=str(other.cert_pem))
    result = user.run(login(corp_idp))
    assert result.returncode == 3, result.stderr
    assert "The certificate of idp.corp.test is not trusted" in result.stderr
    assert "SSL_CERT_FILE or REQUESTS_CA_BUNDLE" in result.stderr
    assert "did not finish within" not in result.stderr  # said at once, not at the timeout
    assert corp_idp.posts == []


def test_proxy_option_with_basic_auth_asked_once_then_stored(
    user: Sandbox, rig: Rig, auth_squid: Squid, corp_idp: CorpIdP
) -> None:
    del user.env["ASS_PASSWORD"]
    first = user.run(
        login(corp_idp, "--proxy", auth_squid.url_with_user(), prompt=True),
        stdin=f"{PROXY_PASSWORD}\n{IDP_PASSWORD}\n",
    )
    signed_in(first, rig)
    assert f"Password for {PROXY_USER} at the proxy {auth_squid.url}" in first.stderr
    assert "saved in the OS keyring" in first.stderr
    (entry,) = json.loads((user.config_dir / "idps.json").read_text())
    assert entry["proxy"] == auth_squid.url_with_user()  # the user, never the password
    assert PROXY_PASSWORD not in (user.config_dir / "idps.json").read_text()
    assert {"idp.corp.test", "sts.corp.test"} <= auth_squid.hosts_seen()

    # The next run finds the proxy with the IdP and its password in the keyring.
    again = user.run(
        ["--idp-nickname", NICK, "--use-stored", "--no-prompt", "--force", "--timeout", "40"]
    )
    signed_in(again, rig)
    assert "Password for" not in again.stderr


def test_wrong_proxy_password_is_one_sentence_at_once(
    user: Sandbox, auth_squid: Squid, corp_idp: CorpIdP
) -> None:
    result = user.run(
        login(corp_idp, "--proxy", auth_squid.url_with_user()),
        extra_env={"ASS_PROXY_PASSWORD": "not-the-password"},
    )
    assert result.returncode == 3, result.stderr
    assert (
        f"The proxy {auth_squid.url} refused the password of {PROXY_USER} (HTTP 407)"
        in result.stderr
    )
    assert "did not finish within" not in result.stderr
    assert "Traceback" not in result.stderr
    assert corp_idp.posts == []


def test_proxy_without_credentials_says_it_needs_them(
    user: Sandbox, auth_squid: Squid, corp_idp: CorpIdP
) -> None:
    result = user.run(login(corp_idp, "--proxy", auth_squid.url))
    assert result.returncode == 3, result.stderr
    assert f"The proxy {auth_squid.url} asks for a username and password" in result.stderr


def test_pac_file_routes_as_it_says(
    user: Sandbox, rig: Rig, squid: Squid, corp_idp: CorpIdP, tmp_path: Path
) -> None:
    pac = tmp_path / "corp.pac"
    pac.write_text(
        "function FindProxyForURL(url, host) {\n"
        f'  if (dnsDomainIs(host, ".corp.test")) return "PROXY 127.0.0.1:{squid.port}";\n'
        '  return "DIRECT";\n'
        "}\n"
    )
    result = user.run(login(corp_idp, "--proxy-pac", pac.as_uri()))
    signed_in(result, rig)
    assert {"idp.corp.test", "sts.corp.test"} <= squid.hosts_seen()
    (entry,) = json.loads((user.config_dir / "idps.json").read_text())
    assert entry["proxy_pac"] == pac.as_uri()


def test_no_proxy_sends_the_idp_direct(user: Sandbox, squid: Squid, corp_idp: CorpIdP) -> None:
    user.env.update(HTTPS_PROXY=squid.url, HTTP_PROXY=squid.url, NO_PROXY="idp.corp.test")
    result = user.run(login(corp_idp, timeout=8))
    # Direct, the name cannot be resolved: the sign-in fails, and squid never saw the IdP.
    assert result.returncode == 3, result.stderr
    assert "could not reach idp.corp.test" in result.stderr
    assert "idp.corp.test" not in squid.hosts_seen()


def test_stored_proxy_password_is_removed_by_clean(
    user: Sandbox, rig: Rig, auth_squid: Squid, corp_idp: CorpIdP
) -> None:
    first = user.run(login(corp_idp, "--proxy", auth_squid.url_with_user()))
    assert first.returncode == 2, first.stderr  # --no-prompt: the proxy password is needed
    assert f"the password of {PROXY_USER} at the proxy" in first.stderr
    code = (
        "import keyring\n"
        f"keyring.set_password('awscli_saml_sso:proxy:127.0.0.1:{auth_squid.port}', "
        f"{PROXY_USER!r}, {PROXY_PASSWORD!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], env=user.env, check=True, timeout=30)
    second = user.run(login(corp_idp, "--proxy", auth_squid.url_with_user()))
    signed_in(second, rig)
    cleaned = user.run(["--clean", "--yes"])
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"keyring password of {PROXY_USER} at the proxy" in cleaned.stdout
