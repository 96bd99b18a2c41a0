"""Which way a request goes: straight to its host, or through the company's proxy.

One rule for every client of the network (the capture proxy's upstream connections, STS,
anything else that fetches a URL): loopback always goes direct; otherwise a PAC file decides
when one is configured, else the proxy named by --proxy or the proxy environment variables
(`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, upper or lower case, as curl and pip read them).

`Router.route(url)` is the small pure function others call. Only loading a PAC file touches
the network or imports a library (pypac, inside `load_pac`).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from awscli_saml_sso.errors import UsageError
from awscli_saml_sso.files import atomic_write
from awscli_saml_sso.model import is_loopback

log = logging.getLogger(__name__)

PAC_TIMEOUT = 10.0
#: The --proxy value that means "no proxy", whatever the environment says.
DIRECT = "direct"
#: A PAC answer for one URL: "PROXY host:port; DIRECT" and the like.
PacFunction = Callable[[str, str], str]


@dataclass(frozen=True)
class Proxy:
    """An upstream HTTP proxy; its password never shows in `repr` or `str`."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False, compare=False)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """`http://host:port`: no credentials, fit for messages and for mitmproxy's mode."""
        return f"http://{self.address}"

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"http://{user}{self.address}"

    @property
    def keyring_entry(self) -> str:
        """The name its password is kept under in the OS keyring (beside the IdPs')."""
        return f"proxy:{self.address}"

    def url_with_credentials(self) -> str:
        """The URL with user and password, for clients that take Basic credentials that way."""
        if not self.username:
            return self.url
        secret = f":{quote(self.password, safe='')}" if self.password is not None else ""
        return f"http://{quote(self.username, safe='')}{secret}@{self.address}"

    def basic_authorization(self) -> str | None:
        """The `Proxy-Authorization` value for Basic credentials, or None without a user."""
        import base64

        if not self.username:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_proxy(text: str, *, where: str = "--proxy") -> Proxy:
    """A proxy from `http://[user[:password]@]host:port` (or `host:port`). Raises UsageError.

    Only http proxies: the connection to the proxy is plain HTTP (CONNECT tunnels carry TLS),
    which is what corporate proxies and the proxy environment variables mean.
    """
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{where}: {_safe(text)!r} is not a proxy URL ({exc})") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise UsageError(
            f"{where}: {_safe(text)!r} is not an http proxy URL (http://host:port; "
            "https and socks proxies are not supported)"
        )
    return Proxy(
        host=parts.hostname,
        port=port or 80,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _safe(text: str) -> str:
    """A proxy URL as typed, with any password masked (for error messages)."""
    return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", text)


# NO_PROXY ---------------------------------------------------------------------------------------
def parse_no_proxy(text: str | None) -> tuple[str, ...]:
    """The entries of a NO_PROXY value (comma or space separated), lower case."""
    if not text:
        return ()
    return tuple(e.strip().lower() for e in re.split(r"[,\s]+", text) if e.strip())


def bypasses(host: str, port: int | None, no_proxy: tuple[str, ...]) -> bool:
    """Whether NO_PROXY sends `host` direct, with the rules curl and Python's urllib share.

    `*` matches every host; `example.com` and `.example.com` match that domain and every
    name below it; `host:port` matches only that port; an IP network (`10.0.0.0/8`) matches
    addresses inside it.
    """
    host = host.lower().strip("[]").rstrip(".")
    for entry in no_proxy:
        if entry == "*":
            return True
        name, want_port = entry, None
        with_port = re.fullmatch(r"(\[.+\]|[^:]+):(\d+)", entry)
        if with_port:
            name, want_port = with_port.group(1), int(with_port.group(2))
        name = name.strip("[]").rstrip(".")
        if want_port is not None and port != want_port:
            continue
        if "/" in name and _in_network(host, name):
            return True
        name = name.lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _in_network(host: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


# The settings of one run --------------------------------------------------------------------------
@dataclass(frozen=True)
class ProxySettings:
    """Where proxies come from for one run: fixed proxies per scheme, NO_PROXY, or a PAC file.

    `source` names where they came from (an option, a variable, the OS) for messages.
    """

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()
    pac: str | None = None
    source: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.http or self.https or self.pac)

    def proxies(self) -> tuple[Proxy, ...]:
        return tuple(dict.fromkeys(p for p in (self.https, self.http) if p is not None))


def _env(env: Mapping[str, str], name: str) -> str:
    """A proxy variable: the lower-case form wins, as in curl and urllib."""
    return (env.get(name.lower()) or env.get(name.upper()) or "").strip()


def proxy_settings(
    env: Mapping[str, str], *, proxy: str | None = None, pac: str | None = None
) -> ProxySettings:
    """The proxy settings of a run: a PAC file, else one proxy for every scheme (`direct`:
    none at all), else the proxy environment variables. NO_PROXY applies to fixed proxies,
    never to a PAC file (which decides for itself). Raises UsageError for a malformed value.
    """
    no_proxy = parse_no_proxy(_env(env, "NO_PROXY"))
    if pac:
        return ProxySettings(pac=check_pac_source(pac), source=f"the PAC file {pac}")
    if proxy and proxy.strip().lower() == DIRECT:
        return ProxySettings(source="--proxy direct")
    if proxy:
        chosen = parse_proxy(proxy)
        return ProxySettings(http=chosen, https=chosen, no_proxy=no_proxy, source="--proxy")
    https_text, http_text = _env(env, "HTTPS_PROXY"), _env(env, "HTTP_PROXY")
    https = parse_proxy(https_text, where="HTTPS_PROXY") if https_text else None
    http = parse_proxy(http_text, where="HTTP_PROXY") if http_text else None
    if https or http:
        names = [n for n, p in (("HTTPS_PROXY", https), ("HTTP_PROXY", http)) if p]
        return ProxySettings(http=http, https=https, no_proxy=no_proxy, source=" and ".join(names))
    return ProxySettings(no_proxy=no_proxy)


def check_pac_source(source: str) -> str:
    """A PAC location: an http(s) URL or a file:// URL. Raises UsageError."""
    scheme = urlsplit(source.strip()).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise UsageError(f"--proxy-pac: {source!r} is not an http(s):// or file:// URL")
    return source.strip()


def os_pac_source() -> str | None:
    """The PAC URL the operating system is configured with (WPAD), or None.

    pypac reads it from the OS settings on Windows and macOS. Linux desktops have no one
    system-wide setting a command-line tool can read, so there nothing is discovered: use
    --proxy-pac or the proxy variables. DNS-based WPAD is not tried (anyone on the network
    who can register `wpad` names could then choose the proxy for the sign-in).
    """
    if sys.platform not in ("win32", "darwin"):
        return None
    try:
        from pypac.os_settings import autoconfig_url_from_preferences, autoconfig_url_from_registry

        found = (
            autoconfig_url_from_registry()
            if sys.platform == "win32"
            else autoconfig_url_from_preferences()
        )
    except Exception:
        log.debug("could not read the OS proxy settings", exc_info=True)
        return None
    return str(found) if found else None


# Routing ------------------------------------------------------------------------------------------
def _first_usable(answer: str) -> tuple[bool, Proxy | None]:
    """(decided, proxy) from a PAC answer: the first DIRECT or PROXY/HTTP entry wins.

    Entries this tool cannot use (SOCKS, HTTPS proxies) are skipped. (False, None) when no
    entry is usable.
    """
    for entry in answer.split(";"):
        words = entry.split()
        if not words:
            continue
        kind = words[0].upper()
        if kind == "DIRECT":
            return True, None
        if kind in ("PROXY", "HTTP") and len(words) > 1:
            try:
                return True, parse_proxy(words[1], where="the PAC file")
            except UsageError:
                log.debug("PAC entry %r is unusable", entry)
    return False, None


class Router:
    """Chooses, per URL, a proxy or None (direct). Loopback is always direct."""

    def __init__(
        self,
        settings: ProxySettings,
        pac: PacFunction | None = None,
        credentials: Mapping[str, Proxy] | None = None,
    ) -> None:
        self.settings = settings
        self._pac = pac
        #: address -> the same proxy with its credentials, for proxies a PAC file names.
        self._credentials = dict(credentials or {})
        for known in settings.proxies():
            self._credentials.setdefault(known.address, known)

    def known_proxy(self, host: str, port: int) -> Proxy | None:
        """The proxy at host:port with its credentials, if the settings name it."""
        return self._credentials.get(Proxy(host, port).address)

    def default_proxy_url(self) -> str:
        """A proxy URL for clients that need one up front (mitmproxy's upstream mode): the
        https proxy, else the http one, else (a PAC file, which names its own) a loopback
        address that a request never uses, since `route` decides each one.
        """
        known = self.settings.proxies()
        return known[0].url if known else "http://127.0.0.1:9"

    def route(self, url: str) -> Proxy | None:
        """The proxy `url` goes through, or None for a direct connection."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host or is_loopback(host):
            return None
        try:
            port = parts.port
        except ValueError:
            port = None
        if self._pac is not None:
            decided, proxy = _first_usable(self._pac(url, host))
            if not decided or proxy is None:
                return None
            return self._credentials.get(proxy.address, proxy)
        proxy = self.settings.https if parts.scheme.lower() in ("https", "wss") else None
        if parts.scheme.lower() in ("http", "ws"):
            proxy = self.settings.http
        if proxy is None or bypasses(host, port, self.settings.no_proxy):
            return None
        return self._credentials.get(proxy.address, proxy)


def load_pac(source: str) -> PacFunction:
    """Fetch (direct, with a time limit) and compile a PAC file. Raises UsageError."""
    import urllib.request

    from pypac.parser import PACFile

    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(source, timeout=PAC_TIMEOUT) as answer:
            text = answer.read(2_000_000).decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the PAC file {source}: {exc}") from exc
    try:
        pac = PACFile(text)
    except Exception as exc:
        raise UsageError(f"the PAC file {source} is not usable: {exc}") from exc

    def find(url: str, host: str) -> str:
        try:
            return str(pac.find_proxy_for_url(url, host))
        except Exception:
            log.debug("the PAC file failed for %s; going direct", host, exc_info=True)
            return "DIRECT"

    return find


def router_for(settings: ProxySettings, credentials: Mapping[str, Proxy] | None = None) -> Router:
    """A Router for `settings`, loading its PAC file when there is one."""
    return Router(settings, load_pac(settings.pac) if settings.pac else None, credentials)


# Integrated sign-in (Kerberos / Negotiate) ------------------------------------------------------
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


def integrated_auth_hosts(text: str | None) -> tuple[str, ...]:
    """The host names of --integrated-auth (comma-separated), checked. Raises UsageError.

    Exact names only: `*` and wildcards would hand the person's Kerberos tickets to any host
    that asks, so they are refused, as are URLs and ports.
    """
    if not text or not text.strip():
        return ()
    hosts = []
    for entry in text.split(","):
        host = entry.strip().lower().rstrip(".")
        if not host:
            continue
        if "*" in host or not _HOST_NAME.fullmatch(host):
            raise UsageError(
                f"--integrated-auth: {entry.strip()!r} is not a host name; give the identity "
                "provider's exact host names, comma-separated (no '*', wildcards or URLs)"
            )
        hosts.append(host)
    if not hosts:
        raise UsageError("--integrated-auth needs at least one host name")
    return tuple(dict.fromkeys(hosts))


# Certificates -------------------------------------------------------------------------------------
#: Variables naming extra CA certificates (PEM) for the identity provider's TLS.
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def certificate_advice(host: str, error: str) -> str:
    """The sentence for an untrusted identity provider certificate."""
    return (
        f"The certificate of {host} is not trusted ({error.rstrip('.')}); if your company "
        "inspects TLS or runs its own CA, set SSL_CERT_FILE or REQUESTS_CA_BUNDLE to a PEM "
        "file holding that CA's certificate."
    )


def _system_ca_pem() -> bytes:
    """The OS trust store as PEM: OpenSSL's default file (Linux, BSD) or the Windows ROOT
    and CA stores. macOS keeps its store in the keychain, which has no file to read; there
    the bundled roots plus the variables apply.
    """
    import ssl

    chunks: list[bytes] = []
    paths = ssl.get_default_verify_paths()
    for name in dict.fromkeys(p for p in (paths.cafile, paths.openssl_cafile) if p):
        try:
            chunks.append(Path(name).read_bytes())
        except OSError:
            continue
        break
    if sys.platform == "win32":
        for store in ("ROOT", "CA"):
            for der, encoding, _trust in ssl.enum_certificates(store):
                if encoding == "x509_asn":
                    chunks.append(ssl.DER_cert_to_PEM_cert(der).encode("ascii"))
    return b"\n".join(chunks)


def ca_bundle(env: Mapping[str, str], target: Path) -> Path | None:
    """Write the CAs the identity provider's TLS is verified against to `target` (0600):
    the certificates bundled with the TLS library, the OS store, and the files SSL_CERT_FILE
    and REQUESTS_CA_BUNDLE name. None when there is nothing to add to the bundled roots.
    Raises UsageError when a variable names a file that cannot be read.
    """
    extra: list[bytes] = []
    for name in CA_VARIABLES:
        value = (env.get(name) or "").strip()
        if not value:
            continue
        try:
            data = Path(value).expanduser().read_bytes()
        except OSError as exc:
            raise UsageError(f"{name} names {value}, which cannot be read: {exc.strerror}") from exc
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise UsageError(f"{name} names {value}, which holds no PEM certificate")
        extra.append(data)
    system = _system_ca_pem()
    if not extra and not system:
        return None
    import certifi

    parts = [Path(certifi.where()).read_bytes(), system, *extra]
    data = b"\n".join(p.rstrip() + b"\n" for p in parts if p)
    try:
        unchanged = target.read_bytes() == data
    except OSError:
        unchanged = False
    if not unchanged:
        atomic_write(target, data)
    return target
