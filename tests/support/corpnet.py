"""A corporate network in miniature, started by the tests that need it.

- `Squid`: a private squid (Debian) on a loopback port, with or without Basic
  authentication (basic_ncsa_auth and an htpasswd file). Its `hosts_file` is the only place
  the names `*.corp.test` resolve, so an IdP or STS endpoint under those names is reachable
  only through squid: the direct route is blocked by construction, with no root needed.
- `private_ca()` and `CorpIdP`: a company CA and an https login page at `idp.corp.test`
  signed by it. The page is a plain username/password form; a right password posts a real
  SAMLResponse (signed by the rig's Keycloak) to AWS, so the sign-in continues into STS.

Every process and port is private to the test run; nothing outlives the fixture.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import http.server
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs

import pytest

SQUID = shutil.which("squid") or "/usr/sbin/squid"
NCSA_AUTH = Path("/usr/lib/squid/basic_ncsa_auth")
CORP_HOSTS = ("idp.corp.test", "sts.corp.test", "web.corp.test")
PROXY_USER, PROXY_PASSWORD = "jdoe", "proxy-secret"
IDP_USER, IDP_PASSWORD = "corp_alice", "corp-password"
ACS = "https://signin.aws.amazon.com/saml"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# squid ----------------------------------------------------------------------------------------
@dataclass
class Squid:
    """A running private squid; `log()` reads its access log (one line per request)."""

    root: Path
    port: int
    auth: bool
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_with_user(self, user: str = PROXY_USER) -> str:
        return f"http://{user}@127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.root / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def hosts_seen(self) -> set[str]:
        """The target hosts in the access log (CONNECT host:port or the absolute URL's)."""
        seen = set()
        for line in self.log().splitlines():
            parts = line.split()
            if len(parts) > 6:
                target = parts[6]
                target = target.split("://", 1)[-1].split("/", 1)[0]
                seen.add(target.rsplit(":", 1)[0])
        return seen


def _htpasswd(user: str, password: str) -> str:
    hashed = subprocess.run(
        ["openssl", "passwd", "-apr1", password],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.strip()
    return f"{user}:{hashed}\n"


def _squid_conf(root: Path, port: int, auth: bool) -> str:
    lines = [
        f"http_port 127.0.0.1:{port}",
        f"pid_filename {root}/squid.pid",
        f"cache_log {root}/cache.log",
        f"access_log stdio:{root}/access.log squid",
        f"coredump_dir {root}",
        f"hosts_file {root}/hosts",
        # No resolver is reachable here: names outside hosts_file simply fail, quickly.
        "dns_nameservers 127.0.0.1",
        "dns_timeout 2 seconds",
        "cache deny all",
        "cache_mem 4 MB",
        "pinger_enable off",
        "netdb_filename none",
        "shutdown_lifetime 0 seconds",
        "visible_hostname corpnet-squid",
        "forwarded_for delete",
    ]
    if auth:
        lines += [
            f"auth_param basic program {NCSA_AUTH} {root}/htpasswd",
            "auth_param basic children 2 startup=1 idle=1",
            "auth_param basic realm corp.test",
            "acl people proxy_auth REQUIRED",
            "http_access allow people",
        ]
    else:
        lines.append("http_access allow all")
    lines.append("http_access deny all")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def run_squid(*, auth: bool = False) -> Iterator[Squid]:
    """Start squid in the foreground (-N) on a free loopback port; stop it afterwards.

    squid drops to its own user for logs and helpers, so its directory is a fresh one
    directly under the temporary directory (pytest's are private to us), removed afterwards.
    """
    if not Path(SQUID).exists():
        pytest.skip("squid is not installed (Debian: apt-get install squid)")
    root = Path(tempfile.mkdtemp(prefix="corpnet-squid-"))
    root.chmod(0o777)
    (root / "hosts").write_text("".join(f"127.0.0.1 {name}\n" for name in CORP_HOSTS))
    if auth:
        (root / "htpasswd").write_text(_htpasswd(PROXY_USER, PROXY_PASSWORD))
        (root / "htpasswd").chmod(0o644)
    port = _free_port()
    (root / "squid.conf").write_text(_squid_conf(root, port, auth))
    squid = Squid(root, port, auth)
    with (root / "stderr.log").open("wb") as stderr:
        squid.process = subprocess.Popen(
            [SQUID, "-N", "-f", str(root / "squid.conf")],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if squid.process.poll() is not None or time.monotonic() > deadline:
                log = root / ("cache.log" if (root / "cache.log").exists() else "stderr.log")
                errors = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"squid did not start: {errors}", pytrace=False)
            time.sleep(0.05)
        yield squid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(squid.process.pid, 15)
        try:
            squid.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(squid.process.pid, 9)
            squid.process.wait(5)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def squid() -> Iterator[Squid]:
    """A private squid without authentication."""
    with run_squid() as running:
        yield running


@pytest.fixture
def auth_squid() -> Iterator[Squid]:
    """A private squid that wants Basic credentials (PROXY_USER / PROXY_PASSWORD)."""
    with run_squid(auth=True) as running:
        yield running


# A company CA and its https IdP ------------------------------------------------------------------
@dataclass(frozen=True)
class PrivateCA:
    cert_pem: Path  # the CA certificate: what SSL_CERT_FILE names
    leaf_cert: Path  # idp.corp.test's chain (leaf + CA)
    leaf_key: Path


def private_ca(directory: Path, name: str = "Corp Test Root CA") -> PrivateCA:
    """A CA and a leaf for the corp.test names (and 127.0.0.1), written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
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
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in CORP_HOSTS]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CORP_HOSTS[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    found = PrivateCA(directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key")
    found.cert_pem.write_bytes(ca.public_bytes(pem))
    found.leaf_cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    found.leaf_key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return found


_FORM = """<!doctype html><html><head><meta charset="utf-8"><title>Corp sign-in</title></head>
<body><h1>Corp sign-in</h1>{error}
<form method="post" action="/login">
<label for="u">Username</label> <input id="u" name="username" type="text" autocomplete="username">
<label for="p">Password</label> <input id="p" name="password" type="password">
<button type="submit">Sign in</button></form></body></html>"""

_AUTOPOST = """<!doctype html><html><head><meta charset="utf-8"><title>Signing in</title></head>
<body onload="document.forms[0].submit()"><form method="post" action="{acs}">
<input type="hidden" name="SAMLResponse" value="{value}"></form></body></html>"""


@dataclass
class CorpIdP:
    """https://idp.corp.test:PORT/login, served on 127.0.0.1 with the private CA's leaf."""

    ca: PrivateCA
    saml_response: str
    port: int = 0
    posts: list[dict[str, str]] = field(default_factory=list)
    _server: Any = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{CORP_HOSTS[0]}:{self.port}/login"

    def __enter__(self) -> Self:
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, body: str) -> None:
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(_FORM.format(error=""))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                idp.posts.append(form)
                if (form.get("username"), form.get("password")) != (IDP_USER, IDP_PASSWORD):
                    self._send(_FORM.format(error='<p role="alert">Wrong password.</p>'))
                    return
                value = html.escape(idp.saml_response, quote=True)
                self._send(_AUTOPOST.format(acs=ACS, value=value))

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca.leaf_cert, self.ca.leaf_key)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


# Kerberos: a private MIT KDC and a Keycloak realm that signs in with SPNEGO ---------------------
KRB_REALM = "CORP.TEST"
KRB_USER, KRB_PASSWORD = "kuser", "kuser-kerberos-password"
KRB_SERVICE = "HTTP/localhost"


@dataclass
class Kdc:
    """A running krb5kdc on a loopback port; `kinit()` gets a ticket into a private cache."""

    root: Path
    port: int
    krb5_conf: Path
    keytab: Path  # HTTP/localhost's keys, for Keycloak
    env: dict[str, str]

    def kinit(self, ccache: Path, principal: str = KRB_USER, password: str = KRB_PASSWORD) -> None:
        subprocess.run(
            ["kinit", "-c", f"FILE:{ccache}", principal],
            input=password + "\n",
            text=True,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=20,
        )


def _kdc_files(root: Path, port: int) -> dict[str, str]:
    krb5_conf = f"""[libdefaults]
 default_realm = {KRB_REALM}
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
[realms]
 {KRB_REALM} = {{
  kdc = 127.0.0.1:{port}
 }}
[domain_realm]
 localhost = {KRB_REALM}
"""
    kdc_conf = f"""[kdcdefaults]
 kdc_ports = {port}
 kdc_tcp_ports = {port}
[realms]
 {KRB_REALM} = {{
  database_name = {root}/principal
  key_stash_file = {root}/stash
  acl_file = {root}/kadm5.acl
  kdc_ports = {port}
  kdc_tcp_ports = {port}
  max_life = 1h
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }}
[logging]
 kdc = FILE:{root}/kdc.log
"""
    return {"krb5.conf": krb5_conf, "kdc.conf": kdc_conf, "kadm5.acl": ""}


@contextlib.contextmanager
def run_kdc(root: Path) -> Iterator[Kdc]:
    """A private KDC (Debian krb5-kdc) configured only through KRB5_CONFIG/KRB5_KDC_PROFILE."""
    for tool in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit"):
        if not shutil.which(tool, path=f"/usr/sbin:/usr/bin:{os.environ.get('PATH', '')}"):
            pytest.skip(f"{tool} is missing (Debian: apt-get install krb5-kdc krb5-user)")
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    for name, text in _kdc_files(root, port).items():
        (root / name).write_text(text)
    env = dict(
        os.environ,
        KRB5_CONFIG=str(root / "krb5.conf"),
        KRB5_KDC_PROFILE=str(root / "kdc.conf"),
        PATH=f"/usr/sbin:{os.environ.get('PATH', '')}",
    )
    keytab = root / "http.keytab"

    def admin(*command: str) -> None:
        subprocess.run(
            ["kadmin.local", "-r", KRB_REALM, "-q", " ".join(command)],
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )

    subprocess.run(
        ["kdb5_util", "create", "-s", "-r", KRB_REALM, "-P", "master-" + os.urandom(8).hex()],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    admin("addprinc", "-pw", KRB_PASSWORD, KRB_USER)
    admin("addprinc", "-randkey", KRB_SERVICE)
    admin("ktadd", "-k", str(keytab), KRB_SERVICE)
    with (root / "krb5kdc.out").open("wb") as out:
        process = subprocess.Popen(
            ["krb5kdc", "-n", "-r", KRB_REALM],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"krb5kdc did not start: {(root / 'krb5kdc.out').read_text()}")
            time.sleep(0.05)
        yield Kdc(root, port, root / "krb5.conf", keytab, env)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        process.wait(10)


def kerberos_realm(aws_realm_file: Path, name: str, keytab: Path) -> dict[str, Any]:
    """A realm like the rig's `aws` one whose users come from Kerberos: no local users, every
    new user in the AWS_USERS group (so the assertion carries its role), no profile form,
    and a Kerberos user-storage provider with the KDC's keytab.
    """
    import json

    realm: dict[str, Any] = json.loads(aws_realm_file.read_text())
    realm.update(realm=name, displayName=name, users=[], defaultGroups=["/AWS_USERS"])
    realm["bruteForceProtected"] = False
    realm["requiredActions"] = [
        {
            "alias": "VERIFY_PROFILE",
            "name": "Verify Profile",
            "providerId": "VERIFY_PROFILE",
            "enabled": False,
            "defaultAction": False,
            "priority": 90,
            "config": {},
        }
    ]
    realm["components"] = {
        "org.keycloak.storage.UserStorageProvider": [
            {
                "name": "corp-kerberos",
                "providerId": "kerberos",
                "subComponents": {},
                "config": {
                    "kerberosRealm": [KRB_REALM],
                    "serverPrincipal": [f"{KRB_SERVICE}@{KRB_REALM}"],
                    "keyTab": [str(keytab)],
                    "allowPasswordAuthentication": ["false"],
                    "updateProfileFirstLogin": ["false"],
                    "debug": ["false"],
                    "enabled": ["true"],
                    "priority": ["0"],
                    "cachePolicy": ["DEFAULT"],
                },
            }
        ]
    }
    return realm
