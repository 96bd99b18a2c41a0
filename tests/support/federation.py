"""A loopback stand-in for the AWS federation endpoint (console sign-in tokens).

No emulator implements https://signin.aws.amazon.com/federation, so the request the tool
sends is checked here the way AWS documents it: a GET with Action=getSigninToken, a
SessionDuration of 900 to 43200 seconds and a Session parameter holding JSON with exactly
sessionId, sessionKey and sessionToken. A request that passes gets {"SigninToken": ...};
anything else gets HTTP 400 and the reason is recorded for the test to show.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SESSION_FIELDS = {"sessionId", "sessionKey", "sessionToken"}


@dataclass
class TokenRequest:
    """One accepted getSigninToken request."""

    duration: int
    session: dict[str, str]
    token: str


@dataclass
class FederationStandIn:
    url: str = ""
    accepted: list[TokenRequest] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def check(self, method: str, target: str) -> TokenRequest:
        """The request as AWS documents it, or ValueError saying what is wrong."""
        if method != "GET":
            raise ValueError(f"method {method}, not GET")
        parts = urlsplit(target)
        if parts.path != "/federation":
            raise ValueError(f"path {parts.path}, not /federation")
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
        if any(len(values) != 1 for values in query.values()):
            raise ValueError("a parameter was given twice")
        if query.get("Action") != ["getSigninToken"]:
            raise ValueError(f"Action={query.get('Action')}, not getSigninToken")
        duration = int(query["SessionDuration"][0])
        if not 900 <= duration <= 43200:
            raise ValueError(f"SessionDuration {duration} outside 900-43200")
        session = json.loads(query["Session"][0])
        if set(session) != SESSION_FIELDS or not all(
            isinstance(value, str) and value for value in session.values()
        ):
            raise ValueError(f"Session JSON has {sorted(session)}, not {sorted(SESSION_FIELDS)}")
        return TokenRequest(duration, session, secrets.token_urlsafe(24))


@contextmanager
def federation_stand_in() -> Iterator[FederationStandIn]:
    """Serve the stand-in on 127.0.0.1 at a random port until the block ends."""
    stand_in = FederationStandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            try:
                accepted = stand_in.check(method, self.path)
            except (ValueError, KeyError, TypeError) as exc:
                stand_in.refused.append(str(exc))
                self._send(400, {"error": str(exc)})
                return
            stand_in.accepted.append(accepted)
            self._send(200, {"SigninToken": accepted.token})

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}/federation"
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
