"""The capture proxy: an in-process mitmproxy that takes the SAMLResponse out of the browser.

The browser signs in through this proxy. When the identity provider's page posts the
assertion to AWS's sign-in endpoint, the proxy answers that POST itself with a small
"sign-in complete" page and keeps the assertion: it is never forwarded to AWS. All other
traffic passes through unchanged, with upstream TLS verification on.

The proxy listens on 127.0.0.1 only, on an ephemeral port, and runs mitmproxy on its own
asyncio loop in a daemon thread. Its CA key lives in a directory the caller chooses (the
tool's config directory), 0700 with 0600 files; the browser trusts that CA's key alone
(`ca_spki_sha256`), never every certificate.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.browser.ca import CA_BASENAME, prepare_confdir, spki_sha256, tighten_files
from awscli_saml_sso.errors import SignInError
from awscli_saml_sso.model import (
    MAX_SAML_INPUT_BYTES,
    is_capture_request,
    origin_of,
)
from awscli_saml_sso.network import Proxy, Router, certificate_advice

if TYPE_CHECKING:
    import asyncio

logger = logging.getLogger(__name__)


# mitmproxy keeps its master and options in module globals (mitmproxy.ctx): a second
# instance in the same process re-points them and breaks the first one's certificates.
_ONE_AT_A_TIME = threading.Lock()

_DONE_PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Sign-in complete</title>"
    b"<link rel='icon' href='data:,'></head>"
    b"<body style='font-family:sans-serif;margin:3em'><h1>Sign-in complete</h1>"
    b"<p>Sign-in complete, you can close this window.</p></body></html>"
)
_PROXY_AUTH_PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Proxy sign-in refused</title>"
    b"</head><body><p>The upstream proxy refused the sign-in (HTTP 407).</p></body></html>"
)
_NO_ASSERTION_PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>No SAMLResponse</title></head>"
    b"<body><p>The identity provider posted to AWS without a SAMLResponse.</p></body></html>"
)


#: The largest capture post read: a SAMLResponse at its limit, URL-encoded, and a RelayState.
#: A larger one is refused from its headers, before its body is read.
MAX_CAPTURE_BODY = MAX_SAML_INPUT_BYTES + 64 * 1024

_HELD_PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Checking the sign-in</title>"
    b"</head><body><p>awscli_saml_sso is checking where this sign-in came from.</p>"
    b"</body></html>"
)


def post_origin(headers: Any) -> str:
    """The origin a browser's POST came from: its Origin header, else its Referer's; "" for
    none, and for the opaque origin `null` (a data: URL, a sandboxed frame)."""
    origin = str(headers.get("origin") or "").strip()
    if origin and origin != "null":
        return origin_of(origin)
    return origin_of(str(headers.get("referer") or "")) if not origin else ""


class _MitmLogBridge(logging.Handler):
    """Re-emit mitmproxy's log records at DEBUG on our logger, and nothing on the terminal.

    Our stdout may carry credential_process JSON and stderr is the person's, so mitmproxy's
    own warnings (client disconnects, TLS handshakes the browser aborted) are debug detail.
    Only the message is forwarded; mitmproxy logs no request bodies without its dumper addon.
    """

    def emit(self, record: logging.LogRecord) -> None:
        # A malformed record must never break the proxy.
        with contextlib.suppress(Exception):
            logger.debug("mitmproxy: %s", record.getMessage())


class _CaptureAddon:
    """mitmproxy addon: answers the assertion post locally and records upstream connections."""

    def __init__(self, owner: CaptureProxy) -> None:
        self._owner = owner

    def running(self) -> None:
        from mitmproxy import ctx

        master: Any = ctx.master
        addrs = master.addons.get("proxyserver").listen_addrs()
        self._owner._on_running(addrs)

    def server_connect(self, data: Any) -> None:
        address = data.server.address
        if address is not None:
            self._owner.upstream_connections.append((str(address[0]), int(address[1])))

    def tls_failed_server(self, data: Any) -> None:
        server = data.context.server
        self._owner._on_upstream_error(server.address, server.error or "TLS handshake failed")

    def server_connect_error(self, data: Any) -> None:
        self._owner._on_upstream_error(data.server.address, data.server.error or "connect failed")

    def client_connected(self, client: Any) -> None:
        if not self._owner._client_is_ours(client.peername):
            logger.debug("refused a proxy client that is not this sign-in's browser")
            client.error = "not this sign-in's browser"

    def requestheaders(self, flow: Any) -> None:
        req = flow.request
        if not is_capture_request(req.pretty_host, req.method, req.path):
            return
        size = str(req.headers.get("content-length") or "").strip()
        if not size.isdigit() or int(size) > MAX_CAPTURE_BODY:
            # Refused before the body is read: an endless or huge post costs nothing.
            self._owner._on_refusal(
                f"The post of the assertion to {req.pretty_host} was larger than "
                f"{MAX_CAPTURE_BODY // 1048576} MiB (or of unknown size); it was refused."
            )
            flow.kill()

    def request(self, flow: Any) -> None:
        from mitmproxy import http

        req = flow.request
        if not is_capture_request(req.pretty_host, req.method, req.path):
            if req.path == "/favicon.ico" and is_capture_request(req.pretty_host, "POST", "/saml"):
                # The "sign-in complete" page lives on an AWS host: keep its icon local too.
                flow.response = http.Response.make(204)
            return
        # Answering here means mitmproxy never opens a connection to AWS (lazy strategy).
        value = req.urlencoded_form.get("SAMLResponse") if req.urlencoded_form else None
        if not value:
            logger.debug("POST to %s%s carried no SAMLResponse", req.pretty_host, req.path)
            flow.response = http.Response.make(
                400, _NO_ASSERTION_PAGE, {"Content-Type": "text/html; charset=utf-8"}
            )
            return
        origin = post_origin(req.headers)
        if origin not in self._owner.allowed_origins:
            # Not (yet) an origin of this sign-in: held until the sign-in decides.
            logger.debug("held a SAMLResponse posted from %r", origin)
            flow.response = http.Response.make(
                403, _HELD_PAGE, {"Content-Type": "text/html; charset=utf-8"}
            )
            self._owner._on_held(origin, value)
            return
        logger.debug(
            "captured the SAMLResponse posted to %s (%d chars)", req.pretty_host, len(value)
        )
        flow.response = http.Response.make(
            200,
            _DONE_PAGE,
            {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        )
        self._owner._on_capture(value)


class _UpstreamAddon:
    """mitmproxy addon: sends each request direct or through the upstream proxy the Router
    names, adds that proxy's Basic credentials and nothing else, and turns a proxy's 407 or
    an untrusted certificate into the owner's `fatal_error` (never a browser login prompt).

    mitmproxy runs in upstream mode whenever a proxy may be used (its regular mode would
    tunnel plain http with CONNECT, which proxies refuse); `server_conn.via` is then chosen
    per request, `None` being direct.
    """

    def __init__(self, owner: CaptureProxy, router: Router) -> None:
        self._owner = owner
        self._router = router

    def requestheaders(self, flow: Any) -> None:
        from mitmproxy.connection import Server

        req = flow.request
        if is_capture_request(req.pretty_host, req.method, req.path):
            return  # answered here, never sent anywhere
        proxy = self._router.route(req.pretty_url)
        via: Any = ("http", (proxy.host, proxy.port)) if proxy is not None else None
        if flow.server_conn.via != via:
            # The flow's connection may already be open on the other route: use a new one.
            fresh = Server(address=flow.server_conn.address)
            fresh.via = via
            flow.server_conn = fresh
        if proxy is None and req.scheme == "http":
            req.authority = ""  # origin-form: a direct request must not look like a proxy's
        flow.metadata["upstream_proxy"] = proxy
        logger.debug("%s %s: %s", req.method, req.pretty_host, proxy or "direct")

    def request(self, flow: Any) -> None:
        req = flow.request
        # Proxy credentials go to the proxy that is used, never to a host reached directly.
        req.headers.pop("Proxy-Authorization", None)
        proxy: Proxy | None = flow.metadata.get("upstream_proxy")
        if proxy is not None and req.scheme == "http":
            authorization = proxy.basic_authorization()
            if authorization:
                req.headers["Proxy-Authorization"] = authorization

    def http_connect_upstream(self, flow: Any) -> None:
        host, port = flow.server_conn.address
        proxy = self._router.known_proxy(str(host), int(port))
        authorization = proxy.basic_authorization() if proxy else None
        if authorization:
            flow.request.headers["Proxy-Authorization"] = authorization

    def response(self, flow: Any) -> None:
        from mitmproxy import http

        proxy: Proxy | None = flow.metadata.get("upstream_proxy")
        if proxy is not None and flow.response.status_code == 407:
            self._owner._on_fatal(_proxy_refused(proxy))
            flow.response = http.Response.make(
                502, _PROXY_AUTH_PAGE, {"Content-Type": "text/html; charset=utf-8"}
            )

    def error(self, flow: Any) -> None:
        message = str(flow.error.msg) if flow.error else ""
        proxy: Proxy | None = flow.metadata.get("upstream_proxy")
        if proxy is not None and "refused HTTP CONNECT request: 407" in message:
            self._owner._on_fatal(_proxy_refused(proxy))
        elif _is_certificate_error(message) and _is_page(flow.request):
            self._owner._on_fatal(certificate_advice(flow.request.pretty_host, message))


def _proxy_refused(proxy: Proxy) -> str:
    if proxy.username:
        return (
            f"The proxy {proxy.url} refused the password of {proxy.username} (HTTP 407); "
            "check the user in --proxy and the password in the OS keyring or ASS_PROXY_PASSWORD."
        )
    return (
        f"The proxy {proxy.url} asks for a username and password (HTTP 407); give the user "
        "in the proxy URL (--proxy http://USER@HOST:PORT)."
    )


def _is_certificate_error(message: str) -> bool:
    text = message.lower()
    return "certificate" in text and ("verify" in text or "hostname" in text)


def _is_page(request: Any) -> bool:
    """Whether a request loads a page the person would see (not an image or a script)."""
    return request.headers.get("Sec-Fetch-Dest", "document") in ("document", "iframe")


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    logger.debug(
        "capture proxy loop: %s", context.get("message"), exc_info=context.get("exception")
    )


async def _cancel_other_tasks() -> None:
    """Cancel the connection handlers still open at shutdown and wait for them, quietly."""
    import asyncio

    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=2.0)


def _socket_owned_by_tree(root_pid: int, local: tuple[str, int]) -> bool:
    """Whether a process in the tree of `root_pid` has a TCP socket bound to `local`."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return False
    for process in reversed(tree):  # the browser's network service is a late child
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for connection in connections:
            if connection.laddr and (connection.laddr.ip, connection.laddr.port) == local:
                return True
    return False


def free_loopback_port() -> int:
    """A port free on 127.0.0.1 right now, so the browser can be told it before we listen."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class CaptureProxy:
    """Context manager running the capture proxy for one sign-in.

    ``port`` and ``ca_spki_sha256`` are available once the ``with`` block is entered.
    Entering raises SignInError when mitmproxy cannot start within ``start_timeout``;
    leaving always stops the proxy, joins its thread and frees the port.
    """

    def __init__(
        self,
        confdir: Path,
        *,
        start_timeout: float = 10.0,
        port: int = 0,
        router: Router | None = None,
        upstream_ca: Path | None = None,
    ) -> None:
        self.confdir = Path(confdir)
        self.router = router  # None or no proxy configured: every request goes direct
        self.upstream_ca = upstream_ca  # None: mitmproxy's own bundle
        self.start_timeout = start_timeout
        self.requested_port = port  # 0: any free port, known once listening
        self.port: int = 0
        self.ca_spki_sha256: str = ""
        self.captured = threading.Event()
        # Diagnostics: which upstream servers the proxy connected to, and TLS failures.
        self.upstream_connections: list[tuple[str, int]] = []
        self.upstream_errors: list[str] = []
        self.upstream_failures: dict[str, str] = {}  # host -> last error
        #: A failure no waiting can mend (the proxy's 407, an untrusted certificate).
        self.fatal_error: str | None = None
        self._saml_response: str | None = None
        # Which posts of an assertion count: those from these origins (the sign-in's), made
        # by clients in the process tree of `browser_pid` once that is set.
        self.allowed_origins: set[str] = set()
        self.browser_pid: int | None = None
        self.held: tuple[str, str] | None = None  # (origin, SAMLResponse) from elsewhere
        self.refusals: list[str] = []  # sentences: posts refused outright
        self._clients: dict[tuple[str, int], bool] = {}
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._listen_addrs: list[Any] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._master: Any = None
        self._bridge: _MitmLogBridge | None = None
        self._saved_propagate = True
        self._holds_lock = False
        self._began = 0.0
        self._listening = False

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> CaptureProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start mitmproxy and wait until it listens; raises SignInError if it cannot."""
        self.begin()
        self.wait_ready()

    def begin(self) -> None:
        """Start mitmproxy in its thread without waiting (importing it takes ~0.4 s, which
        can overlap the browser's start-up); `wait_ready()` waits. Call `stop()` on every path.
        """
        if not _ONE_AT_A_TIME.acquire(blocking=False):
            raise SignInError("Another capture proxy is already running in this process.")
        self._holds_lock = True
        self._began = time.monotonic()
        try:
            prepare_confdir(self.confdir)
            self._install_log_bridge()
            self._thread = threading.Thread(
                target=self._thread_main, name="capture-proxy", daemon=True
            )
            self._thread.start()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self) -> None:
        """Wait until the proxy listens and its CA is known; raises SignInError if it fails."""
        if self._listening:
            return
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        self._listening = True
        logger.debug(
            "capture proxy listening on 127.0.0.1:%d (%.3f s)",
            self.port,
            time.monotonic() - self._began,
        )

    def _wait_listening(self) -> None:
        if not self._ready.wait(self.start_timeout) or self._start_error or not self.port:
            reason = self._start_error or "it did not start listening in time"
            raise SignInError(f"The capture proxy could not start: {reason}.")
        try:
            tighten_files(self.confdir)
            cert = (self.confdir / f"{CA_BASENAME}-ca-cert.pem").read_bytes()
            self.ca_spki_sha256 = spki_sha256(cert)
        except (OSError, ValueError) as exc:
            raise SignInError(
                f"The capture proxy's CA in {self.confdir} is unusable: {exc}."
            ) from exc

    def stop(self) -> None:
        """Stop mitmproxy and join its thread; safe to call more than once."""
        thread, self._thread = self._thread, None
        if thread is not None:
            master, loop = self._master, self._loop
            if master is not None and loop is not None and not loop.is_closed():
                # The loop may close between the check and the call.
                with contextlib.suppress(RuntimeError):
                    master.shutdown()
            thread.join(10.0)
            if thread.is_alive():  # pragma: no cover - mitmproxy wedged; the thread is a daemon
                logger.debug("capture proxy thread did not stop within 10 s")
        self._remove_log_bridge()
        if self._holds_lock:
            self._holds_lock = False
            _ONE_AT_A_TIME.release()

    # -- results -----------------------------------------------------------------------

    def wait_for_saml_response(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` seconds for the capture; the base64 SAMLResponse or None."""
        if self.captured.wait(max(0.0, timeout)):
            return self._saml_response
        return None

    def reset(self) -> None:
        """Forget the last capture and the upstream diagnostics, for another sign-in."""
        self.captured.clear()
        self._saml_response = None
        self.allowed_origins.clear()
        self.browser_pid = None
        self.held = None
        self.refusals.clear()
        self._clients.clear()
        self.upstream_connections.clear()
        self.upstream_errors.clear()
        self.upstream_failures.clear()
        self.fatal_error = None

    def allow_origin(self, origin: str) -> None:
        """Take posts of the assertion from `origin` (a web origin of this sign-in)."""
        if origin:
            self.allowed_origins.add(origin)

    def accept_held(self) -> None:
        """Take the held post after all: the sign-in approved its origin."""
        held, self.held = self.held, None
        if held is not None:
            self.allow_origin(held[0])
            self._on_capture(held[1])

    @property
    def saml_response(self) -> str | None:
        """The captured base64 SAMLResponse, or None before the capture."""
        return self._saml_response

    # -- called from the proxy thread ----------------------------------------------------

    def _on_running(self, addrs: list[Any]) -> None:
        self._listen_addrs = list(addrs)
        for addr in addrs:
            if addr[0] == "127.0.0.1" and addr[1]:
                self.port = int(addr[1])
        self._ready.set()

    def _on_upstream_error(self, address: Any, error: str) -> None:
        host = str(address[0]) if address else "?"
        self.upstream_errors.append(f"{host}: {error}")
        self.upstream_failures[host] = error

    def _on_fatal(self, message: str) -> None:
        if self.fatal_error is None:
            self.fatal_error = message

    def _on_held(self, origin: str, value: str) -> None:
        if self.held is None and not self.captured.is_set():
            self.held = (origin, value)

    def _on_refusal(self, sentence: str) -> None:
        self.refusals.append(sentence)

    def _client_is_ours(self, peer: Any) -> bool:
        """Whether the connection from `peer` comes from this sign-in's browser: a process
        in the tree of `browser_pid` owns its socket. Any client before that pid is set."""
        if self.browser_pid is None:
            return True
        try:
            key = (str(peer[0]), int(peer[1]))
        except (TypeError, ValueError, IndexError):
            return False
        if key not in self._clients:
            self._clients[key] = _socket_owned_by_tree(self.browser_pid, key)
        return self._clients[key]

    def _on_capture(self, value: str) -> None:
        if not self.captured.is_set():
            self._saml_response = value
            self.captured.set()

    def _thread_main(self) -> None:
        try:
            import asyncio

            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread, never printed
            logger.debug("capture proxy stopped with an error", exc_info=True)
            if not self._ready.is_set():
                self._start_error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        import asyncio

        from mitmproxy import addons, master, options

        loop = asyncio.get_running_loop()
        # Errors from connections torn down at shutdown would otherwise reach asyncio's
        # default handler, which prints them on stderr.
        loop.set_exception_handler(_quiet_exception_handler)
        self._loop = loop
        opts: Any = options.Options(
            confdir=str(self.confdir),
            listen_host="127.0.0.1",
            listen_port=self.requested_port,
            ssl_insecure=False,
        )
        router = self.router if self.router and self.router.settings.configured else None
        # A bare Master with the default addons: DumpMaster would add the flow dumper, the
        # terminal log and an error check that prints and calls sys.exit in this thread.
        m: Any = master.Master(opts)
        m.addons.add(*addons.default_addons())  # type: ignore[no-untyped-call]
        m.addons.add(_CaptureAddon(self))
        if router is not None:
            m.addons.add(_UpstreamAddon(self, router))
        # These options are registered by the addons, so they can be set only now.
        # "lazy": never connect upstream before a request needs it, so the captured post
        # never opens a connection to AWS.
        opts.update(connection_strategy="lazy", onboarding=False, command_history=False)
        if router is not None:
            # The mode's proxy is only the default: _UpstreamAddon chooses for each request.
            opts.update(mode=[f"upstream:{router.default_proxy_url()}"])
        if self.upstream_ca is not None:
            # The system store plus SSL_CERT_FILE / REQUESTS_CA_BUNDLE (network.ca_bundle).
            opts.update(ssl_verify_upstream_trusted_ca=str(self.upstream_ca))
        self._master = m
        try:
            await m.run()
        finally:
            # mitmproxy's shutdown leaves its listening socket open; close it so the port
            # is free when stop() returns.
            proxyserver = m.addons.get("proxyserver")
            if proxyserver is not None:
                await proxyserver.servers.update([])
            await _cancel_other_tasks()

    # -- logging -----------------------------------------------------------------------

    def _install_log_bridge(self) -> None:
        mitm_logger = logging.getLogger("mitmproxy")
        self._saved_propagate = mitm_logger.propagate
        self._bridge = _MitmLogBridge(logging.DEBUG)
        mitm_logger.addHandler(self._bridge)
        mitm_logger.propagate = False

    def _remove_log_bridge(self) -> None:
        if self._bridge is not None:
            mitm_logger = logging.getLogger("mitmproxy")
            mitm_logger.removeHandler(self._bridge)
            mitm_logger.propagate = self._saved_propagate
            self._bridge = None
