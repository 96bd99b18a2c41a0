"""The capture proxy: a real in-process mitmproxy, driven by a real HTTP client (no browser).

Browser-level checks of the proxy (capture in Chromium, certificate trust, which posts and
clients it refuses) are in test_browser.py, test_autofill.py and test_trust_browser.py.
"""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.fake_idp import SelfSignedHTTPS

from awscli_saml_sso.browser.proxy import CaptureProxy
from awscli_saml_sso.model import CAPTURE_HOSTS, is_capture_request


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy") / "ca"


@pytest.fixture
def proxy(confdir: Path) -> Iterator[CaptureProxy]:
    with CaptureProxy(confdir) as running:
        yield running


#: The origin the test clients post from, as a browser on the IdP's page would say.
IDP_ORIGIN = "https://idp.example.com"


def _through(proxy: CaptureProxy, confdir: Path) -> requests.Session:
    """A client of the proxy posting as a page of IDP_ORIGIN, an origin of this sign-in."""
    proxy.allow_origin(IDP_ORIGIN)
    session = requests.Session()
    session.headers["Origin"] = IDP_ORIGIN
    session.trust_env = False
    session.proxies = {
        "http": f"http://127.0.0.1:{proxy.port}",
        "https": f"http://127.0.0.1:{proxy.port}",
    }
    session.verify = str(confdir / "mitmproxy-ca-cert.pem")
    return session


@pytest.mark.parametrize(
    ("host", "method", "path", "expected"),
    [
        ("signin.aws.amazon.com", "POST", "/saml", True),
        ("signin.aws.amazon.com", "post", "/saml?SAMLart=1", True),
        ("us-east-1.signin.aws.amazon.com", "POST", "/saml", True),
        ("signin.aws.amazon.com", "POST", "/saml/acs/SAMLSP4SOMEID", True),
        ("signin.amazonaws-us-gov.com", "POST", "/saml", True),
        ("signin.amazonaws.cn", "POST", "/saml", True),
        ("SIGNIN.AWS.AMAZON.COM.", "POST", "/saml", True),
        ("signin.aws.amazon.com", "GET", "/saml", False),
        ("signin.aws.amazon.com", "POST", "/samlx", False),
        ("signin.aws.amazon.com", "POST", "/oauth", False),
        ("evilsignin.aws.amazon.com.example", "POST", "/saml", False),
        ("notsignin.aws.amazon.com", "POST", "/saml", False),
        ("idp.example.com", "POST", "/saml", False),
    ],
)
def test_is_capture_request(host: str, method: str, path: str, expected: bool) -> None:
    assert is_capture_request(host, method, path) is expected


def test_captures_and_answers_locally_never_forwarding(proxy: CaptureProxy, confdir: Path) -> None:
    session = _through(proxy, confdir)
    # "+" and "/" arrive URL-encoded in a form post; the capture is the decoded field.
    reply = session.post(
        "https://signin.aws.amazon.com/saml",
        data={"SAMLResponse": "PHNhbWw+PC9zYW1s/w==", "RelayState": ""},
        timeout=10,
    )
    assert reply.status_code == 200
    assert "Sign-in complete, you can close this window" in reply.text
    assert proxy.captured.is_set()
    assert proxy.wait_for_saml_response(0) == "PHNhbWw+PC9zYW1s/w=="
    # Lazy connection strategy and a locally made response: no connection to AWS at all.
    assert proxy.upstream_connections == []


@pytest.mark.parametrize("host", CAPTURE_HOSTS[1:])
def test_captures_on_other_partitions(proxy: CaptureProxy, confdir: Path, host: str) -> None:
    reply = _through(proxy, confdir).post(
        f"https://{host}/saml", data={"SAMLResponse": "eA=="}, timeout=10
    )
    assert reply.status_code == 200
    assert proxy.wait_for_saml_response(0) == "eA=="
    assert proxy.upstream_connections == []


def test_post_without_assertion_is_answered_not_captured(
    proxy: CaptureProxy, confdir: Path
) -> None:
    reply = _through(proxy, confdir).post(
        "https://signin.aws.amazon.com/saml", data={"other": "x"}, timeout=10
    )
    assert reply.status_code == 400
    assert not proxy.captured.is_set()
    assert proxy.wait_for_saml_response(0.05) is None
    assert proxy.upstream_connections == []


@pytest.mark.parametrize(
    ("headers", "origin"),
    [
        ({"Origin": "https://evil.example"}, "https://evil.example"),
        ({"Origin": "null"}, ""),  # a data: URL or a sandboxed frame
        ({}, ""),  # no Origin, no Referer
        ({"Referer": "https://evil.example/page?x=1"}, "https://evil.example"),
    ],
)
def test_a_post_from_another_origin_is_held_not_captured(
    proxy: CaptureProxy, confdir: Path, headers: dict[str, str], origin: str
) -> None:
    session = _through(proxy, confdir)
    del session.headers["Origin"]
    reply = session.post(
        "https://signin.aws.amazon.com/saml", data={"SAMLResponse": "eA=="}, headers=headers
    )
    assert reply.status_code == 403
    assert not proxy.captured.is_set()
    assert proxy.held == (origin, "eA==")
    proxy.accept_held()  # what the sign-in does once the person approved that origin
    assert proxy.wait_for_saml_response(0) == "eA=="


def test_other_traffic_passes_through(proxy: CaptureProxy, confdir: Path) -> None:
    from support.fake_idp import FakeIdP

    with FakeIdP() as idp:
        reply = _through(proxy, confdir).get(idp.url("/single/"), timeout=10)
    assert reply.status_code == 200
    assert "Sign in to your account" in reply.text
    assert ("127.0.0.1", idp.port) in proxy.upstream_connections
    assert not proxy.captured.is_set()


def test_upstream_tls_is_verified(proxy: CaptureProxy, confdir: Path, tmp_path: Path) -> None:
    with SelfSignedHTTPS(tmp_path) as server:
        reply = _through(proxy, confdir).get(f"https://localhost:{server.port}/", timeout=10)
    # mitmproxy refuses the self-signed upstream: its own 502 page, never the content.
    assert reply.status_code == 502
    assert "self-signed content" not in reply.text
    assert proxy.upstream_errors, "the proxy should record the failed upstream handshake"


def test_listens_on_loopback_only_and_frees_the_port(confdir: Path) -> None:
    with CaptureProxy(confdir) as proxy:
        port = proxy.port
        assert port > 0
        assert all(addr[0] == "127.0.0.1" for addr in proxy._listen_addrs)
        lines = subprocess.run(
            ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        local_addresses = [line.split()[3] for line in lines]
        assert local_addresses == [f"127.0.0.1:{port}"]
        thread = proxy._thread
    assert thread is not None and not thread.is_alive()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass


def test_confdir_is_private_and_reused(tmp_path: Path) -> None:
    confdir = tmp_path / "cfg" / "proxy"
    with CaptureProxy(confdir) as first:
        spki = first.ca_spki_sha256
    assert stat.S_IMODE(confdir.stat().st_mode) == 0o700
    files = list(confdir.iterdir())
    assert any(f.name.endswith("-ca.pem") for f in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    with CaptureProxy(confdir) as second:
        assert second.ca_spki_sha256 == spki  # same CA, not a new one per run
    assert len(spki) == 44 and spki.endswith("=")


def test_spki_matches_openssl(proxy: CaptureProxy, confdir: Path) -> None:
    # The pin Chromium gets is the base64 sha256 of the CA certificate's SPKI.
    pubkey = subprocess.run(
        ["openssl", "x509", "-in", str(confdir / "mitmproxy-ca-cert.pem"), "-pubkey", "-noout"],
        capture_output=True,
        check=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pubkey,
        capture_output=True,
        check=True,
    ).stdout
    import base64
    import hashlib

    assert proxy.ca_spki_sha256 == base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_starts_and_stops_again_and_again(confdir: Path) -> None:
    # How fast is the benchmark's to measure (bench/run.py); here: each start listens on a
    # fresh port and each stop frees it.
    for _ in range(3):
        proxy = CaptureProxy(confdir)
        proxy.start()
        port = proxy.port
        proxy.stop()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_stop_is_idempotent_and_survives_an_open_client(confdir: Path) -> None:
    proxy = CaptureProxy(confdir)
    proxy.start()
    client = socket.create_connection(("127.0.0.1", proxy.port))
    client.sendall(b"GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\n")  # half a request
    began = time.monotonic()
    proxy.stop()
    proxy.stop()
    client.close()
    assert time.monotonic() - began < 3


def test_quiet_on_stdout_and_stderr(tmp_path: Path) -> None:
    """mitmproxy's own chatter (flows, TLS failures, shutdown errors) never reaches the terminal."""
    script = textwrap.dedent(
        f"""
        import logging, socket, ssl, requests
        from pathlib import Path
        from awscli_saml_sso.browser.proxy import CaptureProxy
        logging.basicConfig(level=logging.WARNING)  # like the CLI's default
        with CaptureProxy(Path({str(tmp_path / "ca")!r})) as p:
            proxies = {{"https": f"http://127.0.0.1:{{p.port}}"}}
            # A client that does not trust the proxy: mitmproxy logs a TLS failure.
            try:
                requests.get("https://signin.aws.amazon.com/", proxies=proxies, timeout=5)
            except requests.RequestException:
                pass
            ca = Path({str(tmp_path / "ca")!r}) / "mitmproxy-ca-cert.pem"
            p.allow_origin("https://idp.example.com")
            requests.post("https://signin.aws.amazon.com/saml", data={{"SAMLResponse": "eA=="}},
                          proxies=proxies, verify=str(ca),
                          headers={{"Origin": "https://idp.example.com"}})
            held = socket.create_connection(("127.0.0.1", p.port))  # open at shutdown
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""


def test_proxy_logs_go_to_debug(confdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.DEBUG), CaptureProxy(confdir) as proxy:
        _through(proxy, confdir).post(
            "https://signin.aws.amazon.com/saml", data={"SAMLResponse": "c2VjcmV0"}, timeout=10
        )
    ours = [r for r in caplog.records if r.name == "awscli_saml_sso.browser.proxy"]
    assert any("mitmproxy:" in r.getMessage() for r in ours)
    assert all(r.levelno == logging.DEBUG for r in ours)
    # The assertion itself is never logged.
    assert not any("c2VjcmV0" in r.getMessage() for r in caplog.records)


def test_one_proxy_per_process(confdir: Path, tmp_path: Path) -> None:
    # mitmproxy's globals allow one master per process: a second one must fail clearly.
    from awscli_saml_sso.errors import SignInError

    with CaptureProxy(confdir) as first:
        with pytest.raises(SignInError, match="already running"):
            CaptureProxy(tmp_path / "other").start()
        reply = _through(first, confdir).post(
            "https://signin.aws.amazon.com/saml", data={"SAMLResponse": "eA=="}, timeout=10
        )
        assert reply.status_code == 200
    with CaptureProxy(tmp_path / "other"):  # free again afterwards
        pass


def test_no_favicon_request_reaches_aws(proxy: CaptureProxy, confdir: Path) -> None:
    reply = _through(proxy, confdir).get("https://signin.aws.amazon.com/favicon.ico", timeout=10)
    assert reply.status_code == 204
    assert proxy.upstream_connections == []
