"""The capture proxy's certificate authority: created once, kept private, pinned by the browser.

The CA is mitmproxy's own format (its CertStore writes it), created before mitmproxy starts so
that the browser can start at the same time. The browser trusts this CA's key alone, by its
SPKI hash (Chromium) or in its own profile's store (Firefox); it is never installed anywhere
else.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from awscli_saml_sso.errors import AssError, SignInError
from awscli_saml_sso.files import ensure_private_dir

CA_BASENAME = "mitmproxy"
_CA_KEY_SIZE = 2048  # mitmproxy's default ("key_size" option)


def prepare_confdir(confdir: Path) -> None:
    """Create the CA directory 0700 (files in it are tightened to 0600 once written)."""
    try:
        ensure_private_dir(confdir)
    except AssError as exc:
        raise SignInError(f"Cannot create the proxy's directory: {exc.message}") from exc


def tighten_files(confdir: Path) -> None:
    # mitmproxy writes its public certificate files with the default umask; none of them
    # needs to be readable by anyone else.
    for path in confdir.iterdir():
        if path.is_file() and (path.stat().st_mode & 0o077):
            path.chmod(0o600)


def cert_path(confdir: Path) -> Path:
    """The CA's certificate (PEM) in `confdir`: what Firefox's profile is made to trust."""
    return Path(confdir) / f"{CA_BASENAME}-ca-cert.pem"


def spki_sha256(cert_pem: bytes) -> str:
    """Base64 sha256 of a certificate's SubjectPublicKeyInfo, as Chromium's SPKI list wants it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def existing_caspki_sha256(confdir: Path) -> str | None:
    """The pin of the CA a previous run left in `confdir`, or None (first run, unreadable).

    Known before mitmproxy starts, it lets the browser start at the same time as the proxy.
    """
    try:
        return spki_sha256(cert_path(confdir).read_bytes())
    except (OSError, ValueError):
        return None


def ensure_ca(confdir: Path) -> str:
    """The pin of the proxy's CA in `confdir`, creating the CA first if there is none.

    Creating it here (mitmproxy's own CertStore, the same files mitmproxy would write) lets
    even a first run start the browser while mitmproxy is still being imported.
    Raises SignInError when the CA cannot be created.
    """
    pin = existing_caspki_sha256(confdir)
    if pin is not None:
        return pin
    from mitmproxy.certs import CertStore

    prepare_confdir(Path(confdir))
    try:
        CertStore.from_store(str(confdir), CA_BASENAME, _CA_KEY_SIZE)
        tighten_files(Path(confdir))
    except (OSError, ValueError) as exc:
        raise SignInError(f"Cannot create the capture proxy's CA in {confdir}: {exc}.") from exc
    pin = existing_caspki_sha256(confdir)
    if pin is None:
        raise SignInError(f"The capture proxy's CA in {confdir} is unreadable.")
    return pin
