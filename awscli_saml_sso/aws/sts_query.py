"""STS's Query API without boto3: AssumeRoleWithSAML (unsigned) and GetCallerIdentity (SigV4).

Importing boto3 and building a client cost more than the sign-in it serves (see README,
"Performance"); these two calls are one form POST each. urllib3 (a botocore dependency)
carries them with TLS verification on, through the proxy and CA bundle the caller's target
names (the one routing rule, AWS_CA_BUNDLE / ca_bundle); defusedxml reads the answer.
Errors are STS's own shape
(`<ErrorResponse><Error><Code/><Message/>`), raised as `QueryError`; sts.py words them.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from awscli_saml_sso.model import Keys

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

VERSION = "2011-06-15"
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 30.0
MAX_ANSWER_BYTES = 1024 * 1024
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_RETRY_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})


class QueryError(Exception):
    """One failed call. `code`/`message` are AWS's when it answered with an error document;
    `kind` says what else went wrong: "refused", "unreachable", "not-sts", "bad-endpoint".
    """

    def __init__(self, kind: str, detail: str, code: str = "") -> None:
        super().__init__(detail)
        self.kind, self.detail, self.code = kind, detail, code


def endpoint(region: str, endpoint_url: str | None) -> str:
    """The STS endpoint: `endpoint_url`, else the region's own (China has its own domain)."""
    if endpoint_url:
        return endpoint_url
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}"


@functools.lru_cache(maxsize=2)
def form_value(value: str) -> str:
    """Form-encode once per run: --all-roles sends the same (large) assertion many times."""
    return urllib.parse.quote_plus(value)


def form(params: Mapping[str, str]) -> str:
    return "&".join(f"{urllib.parse.quote_plus(k)}={form_value(v)}" for k, v in params.items())


# SigV4 ------------------------------------------------------------------------------------------
def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign(
    url: str, headers: dict[str, str], body: str, keys: Keys, region: str, now: dt.datetime
) -> dict[str, str]:
    """`headers` plus the SigV4 headers for a POST of `body` to `url` (service `sts`).

    Signs host, content-type, x-amz-date and the session token, as the AWS SDKs do.
    """
    parts = urllib.parse.urlsplit(url)
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    signed = {
        **{k.lower(): v.strip() for k, v in headers.items()},
        "host": parts.netloc,
        "x-amz-date": stamp,
    }
    if keys.session_token:
        signed["x-amz-security-token"] = keys.session_token
    names = ";".join(sorted(signed))
    canonical = "\n".join(
        [
            "POST",
            urllib.parse.quote(parts.path or "/", safe="/~"),
            "",  # no query string: the parameters are in the body
            "".join(f"{name}:{signed[name]}\n" for name in sorted(signed)),
            names,
            hashlib.sha256(body.encode("utf-8")).hexdigest(),
        ]
    )
    scope = f"{stamp[:8]}/{region}/sts/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = b"AWS4" + keys.secret_access_key.encode("utf-8")
    for part in (stamp[:8], region, "sts", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out = {k: v for k, v in signed.items() if k != "host"}
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={keys.access_key_id}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return out


# Transport -------------------------------------------------------------------------------------
_pools: dict[tuple[str | None, str | None], Any] = {}
_pools_lock = threading.Lock()


def _pool(proxy: str | None, ca_bundle: str | None) -> Any:
    """One thread-safe urllib3 pool manager per proxy and CA bundle, shared by all calls."""
    import urllib3

    with _pools_lock:
        pool = _pools.get((proxy, ca_bundle))
        if pool is None:
            options: dict[str, Any] = {
                "cert_reqs": "CERT_REQUIRED",
                "retries": False,
                "maxsize": 16,
                "timeout": urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            }
            if ca_bundle:
                options["ca_certs"] = ca_bundle
            if proxy:
                parts = urllib3.util.parse_url(proxy)
                if parts.auth:  # Basic credentials for the proxy only, never the target
                    options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=parts.auth)
                    proxy = parts._replace(auth=None).url
                pool = urllib3.ProxyManager(proxy, **options)
            else:
                pool = urllib3.PoolManager(**options)
            _pools[(proxy, ca_bundle)] = pool
        return pool


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def _post(
    url: str, body: str, headers: Mapping[str, str], proxy: str | None, ca_bundle: str | None
) -> Answer:
    import urllib3

    try:
        response = _pool(proxy, ca_bundle).request(
            "POST",
            url,
            body=body.encode("utf-8"),
            headers=dict(headers),
            redirect=False,
            preload_content=False,
        )
    except urllib3.exceptions.LocationParseError as exc:
        raise QueryError("bad-endpoint", str(exc)) from exc
    except urllib3.exceptions.SSLError as exc:
        raise QueryError("untrusted", str(exc)) from exc
    except urllib3.exceptions.ProxyError as exc:
        raise QueryError("proxy", str(getattr(exc, "reason", None) or exc)) from exc
    except urllib3.exceptions.HTTPError as exc:
        if isinstance(getattr(exc, "reason", None), urllib3.exceptions.SSLError):
            raise QueryError("untrusted", str(exc.reason)) from exc  # type: ignore[attr-defined]
        if isinstance(getattr(exc, "reason", None), urllib3.exceptions.ProxyError):
            raise QueryError("proxy", str(exc.reason)) from exc  # type: ignore[attr-defined]
        reason = getattr(exc, "reason", None) or exc
        raise QueryError("unreachable", str(reason)) from exc
    except (ValueError, OSError) as exc:  # a URL urllib3 cannot use, a CA bundle it cannot read
        raise QueryError("bad-endpoint", str(exc)) from exc
    try:
        data = response.read(MAX_ANSWER_BYTES + 1)
    except urllib3.exceptions.HTTPError as exc:
        raise QueryError("unreachable", str(exc)) from exc
    finally:
        response.release_conn()
    if len(data) > MAX_ANSWER_BYTES:
        raise QueryError("not-sts", "the answer is over 1 MiB")
    return Answer(response.status, data)


# Answers --------------------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(answer: Answer, result: str) -> dict[str, str]:
    """The text of every leaf under `result` (local names), or QueryError."""
    from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
    from defusedxml.ElementTree import (  # type: ignore[import-untyped]
        ParseError,
        fromstring,
    )

    try:
        root: Element = fromstring(answer.body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        raise QueryError("not-sts", f"HTTP {answer.status}, not XML") from exc
    if _local(root.tag) == "ErrorResponse" or answer.status >= 400:
        error = next((e for e in root.iter() if _local(e.tag) == "Error"), None)
        fields = {_local(e.tag): (e.text or "").strip() for e in error} if error is not None else {}
        if not fields.get("Code"):
            raise QueryError("not-sts", f"HTTP {answer.status} without an STS error")
        raise QueryError("refused", fields.get("Message") or fields["Code"], fields["Code"])
    found = next((e for e in root.iter() if _local(e.tag) == result), None)
    if found is None:
        raise QueryError("not-sts", f"no {result} in the answer")
    return {_local(e.tag): (e.text or "").strip() for e in found.iter() if len(e) == 0}


def call(
    action: str,
    params: Mapping[str, str],
    *,
    region: str,
    endpoint_url: str | None,
    keys: Keys | None = None,
    proxy: str | None = None,
    ca_bundle: str | None = None,
) -> dict[str, str]:
    """POST one Query API action and return the leaves of its `<{action}Result>`.

    Through `proxy` (a URL, Basic credentials allowed) or direct, TLS verified against
    `ca_bundle` or the default roots. Signed with `keys` when given, else unsigned. One
    retry on a throttle, a 5xx or a connection failure, as the SDKs' standard mode does.
    Raises QueryError.
    """
    url = endpoint(region, endpoint_url)
    body = form({"Action": action, "Version": VERSION, **params})
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    for attempt in (1, 2):
        sent = headers
        if keys is not None:
            sent = sign(url, headers, body, keys, region, dt.datetime.now(dt.timezone.utc))
        try:
            answer = _post(url, body, sent, proxy, ca_bundle)
            if answer.status in _RETRY_STATUSES and attempt == 1:
                continue
            return _parse(answer, f"{action}Result")
        except QueryError as exc:
            retry = exc.kind == "unreachable" or exc.code in _RETRY_CODES
            if attempt == 2 or not retry:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
