"""The capture proxy's upstream routing with a real squid and curl as the client.

curl plays the browser (it trusts the capture proxy's CA); what is checked is the proxy's
side: which route each request took (squid's access log), which credentials went where,
and how a 407 or an untrusted certificate becomes `fatal_error` at once.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from support.corpnet import PROXY_PASSWORD, CorpIdP, PrivateCA, Squid, private_ca

from awscli_saml_sso.browser.proxy import CaptureProxy
from awscli_saml_sso.network import Router, ca_bundle, proxy_settings, router_for


@pytest.fixture(scope="module")
def company_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return private_ca(tmp_path_factory.mktemp("corp-ca"))


@pytest.fixture
def corp_idp(company_ca: PrivateCA) -> Iterator[CorpIdP]:
    with CorpIdP(company_ca, "ZHVtbXk=") as idp:
        yield idp


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []  # noqa: RUF012 - one list per test, reset by the fixture

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers.items()))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def loopback_server() -> Iterator[tuple[int, list[dict[str, str]]]]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1]), _Recorder.seen
    server.shutdown()
    server.server_close()
    thread.join(5)


def fetch(proxy: CaptureProxy, url: str, *headers: str) -> str:
    """The HTTP status curl gets for `url` through the capture proxy."""
    extra = [arg for header in headers for arg in ("-H", header)]
    found = subprocess.run(
        [
            *("curl", "-sS", "-m", "20", "-o", "/dev/null", "-w", "%{http_code}"),
            *("--proxy", f"http://127.0.0.1:{proxy.port}", *extra),
            *("--cacert", str(proxy.confdir / "mitmproxy-ca-cert.pem"), url),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return found.stdout


def running(tmp_path: Path, router: Router, upstream_ca: Path | None) -> CaptureProxy:
    return CaptureProxy(tmp_path / "conf", router=router, upstream_ca=upstream_ca)


def test_through_squid_with_basic_auth_never_leaking_it(
    tmp_path: Path,
    auth_squid: Squid,
    corp_idp: CorpIdP,
    company_ca: PrivateCA,
    loopback_server: tuple[int, list[dict[str, str]]],
) -> None:
    settings = proxy_settings({}, proxy=auth_squid.url_with_user())
    assert settings.https is not None
    with_password = replace(settings.https, password=PROXY_PASSWORD)
    router = router_for(settings, {with_password.address: with_password})
    bundle = ca_bundle({"SSL_CERT_FILE": str(company_ca.cert_pem)}, tmp_path / "bundle.pem")
    port, seen = loopback_server
    with running(tmp_path, router, bundle) as proxy:
        assert fetch(proxy, corp_idp.url) == "200"
        # https to a host that goes direct, while mitmproxy runs in upstream mode
        assert fetch(proxy, f"https://127.0.0.1:{corp_idp.port}/direct-tls") == "200"
        # Plain http through squid (absolute-form, with our credentials) ...
        assert fetch(proxy, f"http://web.corp.test:{port}/via-squid") == "204"
        # ... and loopback direct: neither our proxy's credentials nor the client's reach it.
        assert (
            fetch(proxy, f"http://127.0.0.1:{port}/direct", "Proxy-Authorization: Basic eDp5")
            == "204"
        )
        assert proxy.fatal_error is None
    assert len(seen) == 2 and all("Proxy-Authorization" not in headers for headers in seen)
    assert [headers["Host"] for headers in seen] == [f"web.corp.test:{port}", f"127.0.0.1:{port}"]
    log = auth_squid.log()
    assert f"CONNECT idp.corp.test:{corp_idp.port} jdoe" in log
    assert f"GET http://web.corp.test:{port}/via-squid jdoe" in log
    assert "/direct" not in log and f"127.0.0.1:{corp_idp.port}" not in log


def test_wrong_proxy_password_is_fatal_at_once(
    tmp_path: Path, auth_squid: Squid, corp_idp: CorpIdP
) -> None:
    settings = proxy_settings({}, proxy=auth_squid.url_with_user())
    assert settings.https is not None
    wrong = replace(settings.https, password="wrong")
    with running(tmp_path, router_for(settings, {wrong.address: wrong}), None) as proxy:
        assert fetch(proxy, corp_idp.url) == "502"
        assert proxy.fatal_error is not None
        assert f"The proxy {auth_squid.url} refused the password of jdoe" in proxy.fatal_error
        # Plain http: squid's 407 never reaches the browser (it would open a login prompt).
        proxy.reset()
        assert fetch(proxy, "http://sts.corp.test/") == "502"
        assert proxy.fatal_error is not None


def test_untrusted_certificate_is_fatal_and_names_the_variables(
    tmp_path: Path, squid: Squid, corp_idp: CorpIdP
) -> None:
    router = router_for(proxy_settings({"HTTPS_PROXY": squid.url}))
    with running(tmp_path, router, ca_bundle({}, tmp_path / "bundle.pem")) as proxy:
        assert fetch(proxy, corp_idp.url) == "502"
        assert proxy.fatal_error is not None
        assert proxy.fatal_error.startswith("The certificate of idp.corp.test is not trusted")
        assert "SSL_CERT_FILE or REQUESTS_CA_BUNDLE" in proxy.fatal_error


def test_an_untrusted_image_is_not_fatal(tmp_path: Path, squid: Squid, corp_idp: CorpIdP) -> None:
    router = router_for(proxy_settings({"HTTPS_PROXY": squid.url}))
    with running(tmp_path, router, None) as proxy:
        assert fetch(proxy, corp_idp.url, "Sec-Fetch-Dest: image") == "502"
        assert proxy.fatal_error is None
        assert "idp.corp.test" in proxy.upstream_failures
