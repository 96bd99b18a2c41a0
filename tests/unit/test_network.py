"""The routing rule (network.Router) and where proxy settings come from, as pure code."""

from __future__ import annotations

from pathlib import Path

import pytest

from awscli_saml_sso.errors import UsageError
from awscli_saml_sso.network import (
    Proxy,
    ProxySettings,
    Router,
    bypasses,
    ca_bundle,
    parse_no_proxy,
    parse_proxy,
    proxy_settings,
)

SQUID = Proxy("proxy.corp.test", 3128)


def test_parse_proxy_forms_and_secrets() -> None:
    assert parse_proxy("proxy.corp.test:3128") == SQUID
    found = parse_proxy("http://j%40doe:p%3Ass@proxy.corp.test:3128/")
    assert (found.username, found.password) == ("j@doe", "p:ss")
    assert "p:ss" not in repr(found) and "p%3Ass" not in str(found)
    assert str(found) == "http://j@doe@proxy.corp.test:3128"
    assert found.url_with_credentials() == "http://j%40doe:p%3Ass@proxy.corp.test:3128"
    assert parse_proxy("http://[::1]:8080").address == "[::1]:8080"
    assert parse_proxy("http://proxy").port == 80


@pytest.mark.parametrize("bad", ["socks5://proxy:1080", "https://proxy:443", "http://:3128"])
def test_parse_proxy_refuses_what_it_cannot_use(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_proxy(bad)


def test_parse_proxy_error_hides_the_password() -> None:
    with pytest.raises(UsageError) as caught:
        parse_proxy("socks5://user:hunter2@proxy:1080")
    assert "hunter2" not in caught.value.message


def test_basic_authorization() -> None:
    assert Proxy("p", 1, "aladdin", "open sesame").basic_authorization() == (
        "Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    )
    assert SQUID.basic_authorization() is None


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("idp.corp.test", 443, "corp.test", True),
        ("idp.corp.test", 443, ".corp.test", True),
        ("corp.test", 443, ".corp.test", True),
        ("idp.notcorp.test", 443, "corp.test", False),
        ("anything.example", 443, "*", True),
        ("idp.corp.test", 443, "idp.corp.test:8443", False),
        ("idp.corp.test", 8443, "idp.corp.test:8443", True),
        ("10.1.2.3", 443, "10.0.0.0/8", True),
        ("11.1.2.3", 443, "10.0.0.0/8", False),
        ("::1", 443, "[::1]:443", True),
        ("IDP.Corp.Test.", 443, "CORP.test", True),
        ("idp.corp.test", 443, "", False),
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, expected: bool) -> None:
    assert bypasses(host, port, parse_no_proxy(no_proxy)) is expected


def test_settings_from_environment_lower_case_wins() -> None:
    env = {
        "HTTPS_PROXY": "http://upper:1",
        "https_proxy": "http://lower:2",
        "HTTP_PROXY": "http://plain:3",
        "no_proxy": "corp.test, .internal",
    }
    settings = proxy_settings(env)
    assert settings.https == Proxy("lower", 2)
    assert settings.http == Proxy("plain", 3)
    assert settings.no_proxy == ("corp.test", ".internal")
    assert settings.source == "HTTPS_PROXY and HTTP_PROXY"


def test_option_beats_environment_and_direct_ignores_it() -> None:
    env = {"HTTPS_PROXY": "http://envproxy:1"}
    assert proxy_settings(env, proxy="http://cli:2").https == Proxy("cli", 2)
    assert not proxy_settings(env, proxy="direct").configured
    pac = proxy_settings(env, pac="file:///etc/proxy.pac")
    assert (pac.pac, pac.https) == ("file:///etc/proxy.pac", None)
    with pytest.raises(UsageError):
        proxy_settings({}, pac="/etc/proxy.pac")


def test_router_fixed_proxy_per_scheme_no_proxy_and_loopback() -> None:
    settings = ProxySettings(
        http=Proxy("plain", 3), https=SQUID, no_proxy=parse_no_proxy("intranet.test")
    )
    router = Router(settings)
    assert router.route("https://idp.example.com/saml") == SQUID
    assert router.route("http://idp.example.com/") == Proxy("plain", 3)
    assert router.route("https://sso.intranet.test/") is None
    for url in ("http://localhost:8080/", "https://127.0.0.1/", "http://[::1]:80/"):
        assert router.route(url) is None
    assert Router(ProxySettings()).route("https://idp.example.com/") is None
    with_password = Proxy("plain", 3, "jdoe", "secret")
    chosen = Router(settings, credentials={"plain:3": with_password}).route("http://a.example/")
    assert chosen is not None and chosen.password == "secret"


def test_router_follows_the_pac_answer_and_keeps_known_credentials() -> None:
    answers = {
        "idp.example.com": "PROXY proxy.corp.test:3128; DIRECT",
        "direct.example.com": "DIRECT",
        "socks.example.com": "SOCKS5 s:1080; PROXY other:8080",
        "nothing.example.com": "SOCKS s:1080",
    }
    asked: list[tuple[str, str]] = []

    def pac(url: str, host: str) -> str:
        asked.append((url, host))
        return answers[host]

    with_password = Proxy("proxy.corp.test", 3128, "jdoe", "secret")
    router = Router(ProxySettings(pac="file:///x.pac"), pac, {with_password.address: with_password})
    chosen = router.route("https://idp.example.com/login")
    assert chosen == SQUID.__class__("proxy.corp.test", 3128, "jdoe")
    assert chosen is not None and chosen.password == "secret"
    assert router.route("https://direct.example.com/") is None
    assert router.route("https://socks.example.com/") == Proxy("other", 8080)
    assert router.route("https://nothing.example.com/") is None
    assert router.route("http://localhost/") is None  # loopback: the PAC file is not asked
    assert ("http://localhost/", "localhost") not in asked


def test_pac_file_evaluated_by_pypac(tmp_path: Path) -> None:
    from awscli_saml_sso.network import router_for

    pac = tmp_path / "proxy.pac"
    pac.write_text(
        "function FindProxyForURL(url, host) {\n"
        '  if (dnsDomainIs(host, ".corp.test")) return "PROXY squid.corp.test:3128";\n'
        '  return "DIRECT";\n'
        "}\n"
    )
    router = router_for(proxy_settings({}, pac=pac.as_uri()))
    assert router.route("https://idp.corp.test/") == Proxy("squid.corp.test", 3128)
    assert router.route("https://elsewhere.example/") is None


def test_unreadable_pac_file_is_a_usage_error(tmp_path: Path) -> None:
    from awscli_saml_sso.network import router_for

    with pytest.raises(UsageError, match="cannot read the PAC file"):
        router_for(proxy_settings({}, pac=(tmp_path / "missing.pac").as_uri()))


def test_ca_bundle_adds_the_variables_files(tmp_path: Path) -> None:
    corporate = b"-----BEGIN CERTIFICATE-----\nMIIcorporate\n-----END CERTIFICATE-----\n"
    (tmp_path / "corp.pem").write_bytes(corporate)
    target = tmp_path / "out" / "upstream-ca.pem"
    found = ca_bundle({"REQUESTS_CA_BUNDLE": str(tmp_path / "corp.pem")}, target)
    assert found == target
    data = target.read_bytes()
    assert corporate in data and data.count(b"BEGIN CERTIFICATE") > 10  # plus the usual roots
    assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(UsageError, match="SSL_CERT_FILE names"):
        ca_bundle({"SSL_CERT_FILE": str(tmp_path / "missing.pem")}, target)


def test_stored_proxy_keeps_no_password_and_a_new_setting_replaces_both(tmp_path: Path) -> None:
    from awscli_saml_sso.idp.store import Settings
    from awscli_saml_sso.idp.upstream import settings_for, with_stored_proxy
    from awscli_saml_sso.model import IdentityProvider, RunOptions

    store = Settings(tmp_path / "ass")
    url = "https://idp.example.com/login"
    store.save_idp(IdentityProvider("corp", url, proxy="http://jdoe:secret@proxy.corp.test:3128"))
    assert "secret" not in store.idps_file.read_text()
    assert store.load_idps()["corp"].proxy == "http://jdoe@proxy.corp.test:3128"
    store.save_idp(IdentityProvider("corp", url, username="alice"))  # no proxy given: kept
    assert store.load_idps()["corp"].proxy == "http://jdoe@proxy.corp.test:3128"
    store.save_idp(IdentityProvider("corp", url, proxy_pac="file:///corp.pac"))
    idp = store.load_idps()["corp"]
    assert (idp.proxy, idp.proxy_pac, idp.username) == (None, "file:///corp.pac", "alice")

    env = {"HTTPS_PROXY": "http://envproxy:8080"}
    opts = with_stored_proxy(RunOptions(idp_nickname="corp", env=env), store)
    assert opts.proxy_pac == "file:///corp.pac"
    assert settings_for(opts).pac == "file:///corp.pac"  # stored beats the environment
    given = RunOptions(idp_nickname="corp", proxy="direct", env=env)
    assert with_stored_proxy(given, store) is given  # the command line beats what is stored
    assert not settings_for(given, idp).configured
    assert settings_for(RunOptions(env=env)).https == Proxy("envproxy", 8080)


def test_aws_ca_bundle_as_the_aws_cli_reads_it(tmp_path: Path) -> None:
    from awscli_saml_sso.aws.config_files import aws_ca_bundle

    config = tmp_path / "config"
    config.write_text(
        "[default]\nca_bundle = /etc/default.pem\n[profile work]\nca_bundle=~/w.pem\n"
    )
    env = {"AWS_CONFIG_FILE": str(config)}
    assert aws_ca_bundle(env, "work") == str(Path("~/w.pem").expanduser())
    assert aws_ca_bundle(env, "default") == "/etc/default.pem"
    assert aws_ca_bundle(env, "other") is None
    assert aws_ca_bundle({**env, "AWS_CA_BUNDLE": "/env.pem"}, "work") == "/env.pem"


def test_integrated_auth_hosts_are_exact_names() -> None:
    from awscli_saml_sso.network import integrated_auth_hosts

    assert integrated_auth_hosts(" sts.corp.example, LOCALHOST ,sts.corp.example") == (
        "sts.corp.example",
        "localhost",
    )
    assert integrated_auth_hosts(None) == ()
    for bad in ("*", "*.corp.example", "https://sts.corp.example", "sts:443", "a b", ","):
        with pytest.raises(UsageError, match="integrated-auth"):
            integrated_auth_hosts(bad)


def test_allow_negotiate_merges_into_local_state(tmp_path: Path) -> None:
    import json

    from awscli_saml_sso.browser.profile import allow_negotiate

    allow_negotiate(tmp_path)
    fresh = json.loads((tmp_path / "Local State").read_text())
    assert fresh == {"net": {"received_http_auth_negotiate_headers": True}}
    (tmp_path / "Local State").write_text(json.dumps({"browser": {"x": 1}, "net": {"y": 2}}))
    allow_negotiate(tmp_path)
    merged = json.loads((tmp_path / "Local State").read_text())
    assert merged == {
        "browser": {"x": 1},
        "net": {"y": 2, "received_http_auth_negotiate_headers": True},
    }
