"""A loopback credential server for long jobs (`exec --server`).

AWS SDKs and the AWS CLI read AWS_CONTAINER_CREDENTIALS_FULL_URI and fetch their keys from
it, sending AWS_CONTAINER_AUTHORIZATION_TOKEN in the Authorization header; they fetch again
as the keys near expiry. This server answers on 127.0.0.1 at a random port, checks the
per-run random token (403 otherwise) and hands out the current keys, which a background
thread renews `min_remaining` seconds before they expire, so a job never sees expired keys
and never waits for a sign-in inside an SDK's short HTTP timeout.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.errors import AssError
from awscli_saml_sso.model import Keys
from awscli_saml_sso.timestamps import format_timestamp

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

log = logging.getLogger(__name__)

PATH = "/credentials"
#: Variables that would make an SDK use something other than the server.
REMOVED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",  # SDKs prefer it to the full URI
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)
#: After a failed renewal, try again this often while the current keys last.
RETRY_SECONDS = 30.0


def container_document(keys: Keys) -> dict[str, str]:
    """The container-credentials answer SDKs expect (as ECS and EKS serve it)."""
    document = {
        "AccessKeyId": keys.access_key_id,
        "SecretAccessKey": keys.secret_access_key,
        "Token": keys.session_token,
        "Expiration": format_timestamp(keys.expiration),
    }
    if keys.role_arn:
        document["RoleArn"] = keys.role_arn
    return document


def seconds_until_renewal(keys: Keys, min_remaining: float) -> float:
    """When to renew: `min_remaining` before expiry; for keys that live no longer than that,
    after a quarter of their life (no tight loop, and SDKs, which refuse keys with less than
    ten minutes left after a refresh, still get 900-second keys in time); at least 1 s.
    """
    remaining = keys.remaining().total_seconds()
    margin = min_remaining if min_remaining < remaining else remaining * 0.75
    return max(remaining - margin, 1.0)


class CredentialServer:
    """Serves the current keys to holders of the token; renews them in the background.

    `fetch` returns fresh keys (a cached or new sign-in); it runs on the renewal thread only.
    """

    def __init__(self, first: Keys, fetch: Callable[[], Keys], *, min_remaining: float) -> None:
        import secrets  # with hmac, only `exec --server` needs them (fast paths stay light)

        self.token = secrets.token_urlsafe(32)
        self._keys = first
        self._fetch = fetch
        self._min_remaining = min_remaining
        self._lock = threading.Lock()
        self._stop = threading.Event()
        from http.server import ThreadingHTTPServer  # only `exec --server` needs it

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        port = self._http.server_address[1]
        return f"http://127.0.0.1:{port}{PATH}"

    def keys(self) -> Keys:
        with self._lock:
            return self._keys

    def authorized(self, header: str | None) -> bool:
        import hmac

        return header is not None and hmac.compare_digest(header.encode(), self.token.encode())

    def variables(self, region: str) -> dict[str, str]:
        """What the job's environment gets: the server's URL and token, and the region."""
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.token,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }

    def _renew_forever(self) -> None:
        wait = seconds_until_renewal(self.keys(), self._min_remaining)
        while not self._stop.wait(wait):
            try:
                fresh = self._fetch()
            except AssError as exc:
                log.warning("renewing the keys failed: %s", exc.message)
                wait = RETRY_SECONDS
                continue
            with self._lock:
                self._keys = fresh
            log.info("keys renewed; they expire at %s", format_timestamp(fresh.expiration))
            wait = seconds_until_renewal(fresh, self._min_remaining)

    @contextmanager
    def running(self) -> Iterator[CredentialServer]:
        """Serve and renew until the block ends; then stop both and close the socket."""
        self._threads = [
            threading.Thread(target=self._http.serve_forever, args=(0.2,), daemon=True),
            threading.Thread(target=self._renew_forever, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._http.shutdown()
            self._http.server_close()
            # A renewal in progress (a sign-in) may take a while; it is a daemon thread and
            # holds nothing the exit needs, so the wait is bounded.
            for thread in self._threads:
                thread.join(timeout=5)


def _handler(server: CredentialServer) -> type[BaseHTTPRequestHandler]:
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != PATH:
                self._answer(404, {"message": "not found"})
            elif not server.authorized(self.headers.get("Authorization")):
                self._answer(403, {"message": "missing or wrong authorization token"})
            else:
                keys = server.keys()
                if keys.remaining().total_seconds() <= 0:
                    self._answer(503, {"message": "the keys expired and renewing them failed"})
                else:
                    self._answer(200, container_document(keys))

        def _answer(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("credential server: " + format, *args)

    return Handler
