"""What the benchmark needs to run beside saml2aws on the same rig: the saml2aws binary,
two small loopback forwarders, and the whole process tree's memory.

- saml2aws is built from its Go module at a fixed tag with the installed Go toolchain (the
  Go client fetches it; the binary is cached outside the work tree). Without Go, network or
  module cache, `saml2aws_binary` says why and the benchmark runs ours alone.
- `StsForwarder`: an HTTPS proxy on loopback that terminates the CONNECT tunnel to any
  `sts.*.amazonaws.com` with a certificate of its own CA (AWS_CA_BUNDLE trusts it) and hands
  the requests to the emulator, after an optional delay (a 50 ms STS for --all-roles).
  saml2aws has no STS endpoint option but honours HTTPS_PROXY and AWS_CA_BUNDLE; ours goes
  the same way in the side-by-side items, so both pay the same hop.
- `IdpForwarder`: a plain-HTTP reverse proxy to Keycloak that drops the `Secure` attribute
  of its cookies. Keycloak marks them Secure even on http://localhost; Go's cookie jar then
  never sends them and saml2aws retries its login forever. Browsers and our replay treat
  loopback as secure and need no such help (and Chromium refuses the SameSite=None cookies
  it would leave without Secure), so ours signs in at Keycloak directly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import http.server
import json
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

SAML2AWS_MODULE = "github.com/versent/saml2aws/v2"
SAML2AWS_VERSION = "v2.36.19"


def cache_dir() -> Path:
    return (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "awscli_saml_sso-bench"
    )


def saml2aws_binary(build: bool = True) -> tuple[Path | None, str]:
    """The cached saml2aws binary (built first when missing and `build`), or None and why."""
    binary = cache_dir() / f"saml2aws-{SAML2AWS_VERSION}"
    if binary.exists():
        return binary, f"saml2aws {SAML2AWS_VERSION} ({binary})"
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if not build or go is None:
        return None, "saml2aws is not built here and no Go toolchain was found"
    env = dict(os.environ, GOFLAGS="-mod=mod")
    try:
        done = subprocess.run(
            [go, "mod", "download", "-json", f"{SAML2AWS_MODULE}@{SAML2AWS_VERSION}"],
            capture_output=True, text=True, timeout=600, env=env, check=True,
        )  # fmt: skip
        source = json.loads(done.stdout)["Dir"]
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [go, "build", "-o", str(binary), "./cmd/saml2aws"],
            cwd=source, capture_output=True, text=True, timeout=1800, env=env, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError, KeyError, ValueError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        return None, f"saml2aws could not be built: {str(detail).strip().splitlines()[-1:]}"
    return binary, f"saml2aws {SAML2AWS_VERSION} ({binary}, built now)"


def saml2aws_config(path: Path, idp_url: str, role_arn: str) -> None:
    """A saml2aws account for the rig's Keycloak (its KeyCloak provider, plain HTTP)."""
    path.write_text(
        "[default]\n"
        "name = default\n"
        f"url = {idp_url}\n"
        "username = aws_user\n"
        "provider = KeyCloak\n"
        "mfa = Auto\n"
        "skip_verify = false\n"
        "timeout = 0\n"
        "aws_urn = urn:amazon:webservices\n"
        "aws_session_duration = 3600\n"
        "aws_profile = saml\n"
        f"role_arn = {role_arn}\n"
        "region = us-east-1\n"
    )


# A CA of our own for the STS forwarder -------------------------------------------------------
def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, leaf certificate, leaf key) for *.amazonaws.com, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("bench STS forwarder CA"))
        .issuer_name(name("bench STS forwarder CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    hosts = ["sts.amazonaws.com", "*.amazonaws.com", "sts.us-east-1.amazonaws.com"]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("sts.amazonaws.com"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.pem", directory / "leaf.pem", directory / "leaf-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# Forwarders ------------------------------------------------------------------------------------
class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-handshake (a process exiting with its pool) is no
        failure of the benchmark; anything else is still printed."""
        if isinstance(sys.exc_info()[1], ssl.SSLEOFError | ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Forwarding(http.server.BaseHTTPRequestHandler):
    """Hands each request to `upstream` (host, port) over one kept-alive connection."""

    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    delay: float = 0.0
    strip_secure: bool = False
    rewrite: tuple[str, str] | None = None  # upstream base URL -> ours, in pages and Location
    _conn: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.delay:
            time.sleep(self.delay)
        path = self.path
        if path.startswith(("http://", "https://")):  # a plain proxy request: absolute URI
            parts = urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(*self.upstream, timeout=60)
            try:
                self._conn.request(self.command, path, body=body, headers=headers)
                answer = self._conn.getresponse()
                data = answer.read()
                break
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    self.send_error(502)
                    return
        self.send_response_only(answer.status, answer.reason)
        if self.rewrite:
            data = data.replace(self.rewrite[0].encode(), self.rewrite[1].encode())
        for key, value in answer.getheaders():
            if self.rewrite and key.lower() == "location":
                value = value.replace(*self.rewrite)
            if key.lower() in ("transfer-encoding", "content-length", "connection"):
                continue
            if self.strip_secure and key.lower() == "set-cookie":
                value = "; ".join(
                    part.strip() for part in value.split(";") if part.strip().lower() != "secure"
                )
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


class _StsHandler(_Forwarding):
    tls: ssl.SSLContext

    def do_CONNECT(self) -> None:
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.connection = self.tls.wrap_socket(self.connection, server_side=True)
        self.rfile = self.connection.makefile("rb", self.rbufsize)
        self.wfile = socketserver._SocketWriter(self.connection)  # type: ignore[attr-defined]
        self.close_connection = False
        while not self.close_connection:
            self.handle_one_request()


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler], port: int = 0) -> Iterator[int]:
    server = _Server(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def sts_forwarder(
    emulator_url: str, directory: Path, delay: float = 0.0
) -> Iterator[dict[str, str]]:
    """An HTTPS proxy that answers every STS host from the emulator; yields the variables
    (HTTPS_PROXY, AWS_CA_BUNDLE) that send a tool's STS calls through it.
    """
    ca, leaf, key = make_ca(directory)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(leaf, key)
    target = urlsplit(emulator_url)
    handler = type(
        "Sts",
        (_StsHandler,),
        {"upstream": (target.hostname, target.port or 80), "delay": delay, "tls": tls},
    )
    with serving(handler) as port:
        yield {
            "HTTPS_PROXY": f"http://127.0.0.1:{port}",
            "https_proxy": f"http://127.0.0.1:{port}",
            "AWS_CA_BUNDLE": str(ca),
            "NO_PROXY": "localhost,127.0.0.1",
        }


@contextlib.contextmanager
def idp_forwarder(keycloak_url: str) -> Iterator[str]:
    """A reverse proxy to Keycloak that strips `Secure` from its cookies; yields its base URL."""
    target = urlsplit(keycloak_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Keycloak writes its own configured host into form actions and redirects: point them
    # back at the forwarder, or the client would leave it after the first page.
    handler = type(
        "Idp",
        (_Forwarding,),
        {
            "upstream": (target.hostname, target.port or 80),
            "strip_secure": True,
            "rewrite": (f"{target.scheme}://{target.netloc}", base),
        },
    )
    with serving(handler, port) as _:
        yield base


# Memory of a whole process tree ------------------------------------------------------------------
class TreeMemory:
    """Samples the summed RSS of a process and all its descendants; keeps the highest sum and
    the process count at that moment. RSS counts shared pages once per process, so the sum
    is an upper bound, which is what a target should be held to.
    """

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.peak_bytes = 0
        self.processes = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(2)

    def _run(self) -> None:
        import psutil

        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.pid)
            while not self._done.is_set():
                total, count = 0, 0
                with contextlib.suppress(psutil.Error):
                    for process in [root, *root.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            total += process.memory_info().rss
                            count += 1
                if total > self.peak_bytes:
                    self.peak_bytes, self.processes = total, count
                self._done.wait(self.interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
