"""eBay Digital Signatures (RFC 9421 HTTP Message Signatures + RFC 9530 Content-Digest) for EU/UK sellers.

Source: eBay's guide "Digital Signatures for APIs" and its repository
``eBay/digital-signature-verification-ebay-api`` (README + ``VerificationService.java``); docs/ebay-api.md "Digital Signatures".

* In scope: every Finances API method (baysync: getTransactions, getPayouts), Fulfillment issueRefund,
  Trading GetAccount and some Post-Order refund/cancel methods -- baysync calls only the Finances ones, so
  :data:`SIGNED_APIS` is ``{"finances"}``.  eBay ignores signatures elsewhere, so a signature is added to
  every in-scope call whenever a key is configured, whatever the seller's country.
* Headers: ``x-ebay-signature-key: <JWE>``, ``Signature-Input: sig1=(<components>);created=<unix s>``,
  ``Signature: sig1=:<base64 signature>:`` and, only with a body, ``Content-Digest: sha-256=:<b64>:``.
* Components, in this order: ``"content-digest"`` (with a body) ``"x-ebay-signature-key" "@method" "@path"
  "@authority"``.  The signature base is one ``"<name>": <value>`` line per component, then
  ``"@signature-params": (<components>);created=<t>``, joined by ``\\n`` (no trailing newline).
* Ciphers: Ed25519 (recommended) and RSA (RSASSA-PKCS1-v1_5 with SHA-256).

Keys come from the Key Management API ``createSigningKey`` (the private key is returned once); one key
belongs to the developer's application and signs for all its sellers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import httpx
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from .errors import INVALID_SIGNATURE_ERRORS, MISSING_KEY_ERROR, SIGNATURE_ERRORS  # noqa: F401
from .redact import register_secret

if TYPE_CHECKING:
    from ..config import Settings

SIGNED_APIS = frozenset({"finances"})
KEY_MANAGEMENT_PATH = "/developer/key_management/v1/signing_key"
LABEL = "sig1"
COMPONENTS = ("x-ebay-signature-key", "@method", "@path", "@authority")


class SigningKeyError(ValueError):
    """A signing key (file, stored row, API answer) is unusable: one line, never key material."""


def needs_signature(api: str) -> bool:
    return api in SIGNED_APIS


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` value with the one algorithm eBay supports: sha-256."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def _authority(url: httpx.URL) -> str:
    host = url.host.lower()
    return f"{host}:{url.port}" if url.port is not None else host  # httpx drops default ports


def _path(url: httpx.URL) -> str:
    return url.raw_path.decode("ascii").split("?", 1)[0] or "/"


def signature_params(components: tuple[str, ...], created: int) -> str:
    return "(" + " ".join(f'"{c}"' for c in components) + f");created={created}"


def signature_base(method: str, url: str | httpx.URL, headers: Mapping[str, str], components: tuple[str, ...],
                   created: int) -> str:
    """The RFC 9421 signature base, as eBay's VerificationService.calculateBase builds it."""
    u = httpx.URL(url)
    lower = {k.lower(): v for k, v in headers.items()}
    lines = []
    for c in components:
        if c == "@method":
            v = method.upper()
        elif c == "@path":
            v = _path(u)
        elif c == "@authority":
            v = _authority(u)
        elif c.startswith("@"):
            raise SigningKeyError(f"unsupported derived component {c}")
        else:
            if c not in lower:
                raise SigningKeyError(f"header {c} is not in the message")
            v = lower[c]
        lines.append(f'"{c}": {v}')
    lines.append(f'"@signature-params": {signature_params(components, created)}')
    return "\n".join(lines)


def _load_private(text: str) -> Any:
    """A PEM private key, or the bare base64 PKCS#8 DER eBay's createSigningKey may return."""
    raw = text.strip()
    try:
        if "-----BEGIN" in raw:
            return serialization.load_pem_private_key(raw.encode(), password=None)
        return serialization.load_der_private_key(base64.b64decode("".join(raw.split()), validate=True), password=None)
    except (ValueError, TypeError, binascii.Error):
        raise SigningKeyError("the private key is not a PEM or base64 PKCS#8 Ed25519/RSA key") from None


def load_public(text: str) -> Any:
    raw = text.strip()
    try:
        if "-----BEGIN" in raw:
            return serialization.load_pem_public_key(raw.encode())
        return serialization.load_der_public_key(base64.b64decode("".join(raw.split()), validate=True))
    except (ValueError, TypeError, binascii.Error):
        raise SigningKeyError("the public key is not a PEM or base64 X.509 Ed25519/RSA key") from None


@dataclass(repr=False)
class Signer:
    """Signs requests with one eBay signing key.  ``repr`` never shows the key."""

    jwe: str
    private_key_text: str
    key_id: str = ""
    cipher: str = ""
    _key: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        register_secret(self.private_key_text)
        for line in self.private_key_text.splitlines():
            if "-----" not in line:
                register_secret(line.strip())
        self._key = _load_private(self.private_key_text)
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            self.cipher = "ED25519"
        elif isinstance(self._key, rsa.RSAPrivateKey):
            self.cipher = "RSA"
        else:
            raise SigningKeyError("the private key must be Ed25519 or RSA")
        if not self.jwe or len(self.jwe.split(".")) != 5:
            raise SigningKeyError("the public key JWE must be a compact JWE (five '.'-separated parts)")

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r}, cipher={self.cipher!r})"

    def sign_bytes(self, data: bytes) -> bytes:
        if self.cipher == "RSA":
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._key.sign(data)

    def headers(self, method: str, url: str | httpx.URL, body: bytes | None = None, *,
                created: int | None = None) -> dict[str, str]:
        """The headers to add to a request: x-ebay-signature-key, Signature-Input, Signature (+ Content-Digest)."""
        created = int(time.time()) if created is None else int(created)
        out = {"x-ebay-signature-key": self.jwe}
        components: tuple[str, ...] = COMPONENTS
        if body:
            out["Content-Digest"] = content_digest(body)
            components = ("content-digest", *COMPONENTS)
        base = signature_base(method, url, out, components, created)
        sig = base64.b64encode(self.sign_bytes(base.encode())).decode()
        out["Signature-Input"] = f"{LABEL}={signature_params(components, created)}"
        out["Signature"] = f"{LABEL}=:{sig}:"
        return out


_INPUT_RE = re.compile(r'^\s*([A-Za-z0-9_-]+)=\(([^)]*)\);created=(\d+)(;keyid="?[^;]*"?)?\s*$')
_SIG_RE = re.compile(r"^\s*([A-Za-z0-9_-]+)=:([A-Za-z0-9+/=]+):\s*$")


def verify_request(public_key: Any, method: str, url: str | httpx.URL, headers: Mapping[str, str],
                   body: bytes | None) -> str | None:
    """Check a signed request like eBay's VerificationService; None when valid, else the reason."""
    h = {k.lower(): v for k, v in headers.items()}
    m = _INPUT_RE.match(h.get("signature-input", ""))
    s = _SIG_RE.match(h.get("signature", ""))
    if not m or not s:
        return "Signature-Input or Signature header missing or malformed"
    components = tuple(c.strip('"') for c in m.group(2).split())
    if not set(COMPONENTS) <= set(components):
        return "Signature-Input does not cover " + " ".join(COMPONENTS)
    if body:
        if "content-digest" not in components or h.get("content-digest") != content_digest(body):
            return "Content-Digest missing or wrong"
    try:
        base = signature_base(method, url, h, components, int(m.group(3)))
    except SigningKeyError as e:
        return str(e)
    sig = base64.b64decode(s.group(2))
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(sig, base.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            public_key.verify(sig, base.encode())
    except InvalidSignature:
        return "Signature invalid"
    return None


def parse_key_file(text: str) -> dict[str, str]:
    """A key file for ``baysync keys signing import``: the createSigningKey JSON answer (``privateKey``,
    ``jwe``, optional ``signingKeyId``/``publicKey``) or PEM text holding the private key block and the JWE
    on a line of its own.  Returns ``{"private_key", "jwe", "key_id", "public_key"}``; SigningKeyError
    (one line, no key material) when unusable."""
    text = text.strip()
    if text.startswith("{"):
        try:
            d = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise SigningKeyError("the key file is not valid JSON") from None
        if not isinstance(d, dict) or not isinstance(d.get("privateKey"), str) or not isinstance(d.get("jwe"), str):
            raise SigningKeyError("the key JSON needs string members privateKey and jwe (createSigningKey's answer)")
        out = {"private_key": d["privateKey"], "jwe": d["jwe"].strip(), "key_id": str(d.get("signingKeyId") or ""),
               "public_key": str(d.get("publicKey") or "")}
    else:
        m = re.search(r"-----BEGIN PRIVATE KEY-----.+?-----END PRIVATE KEY-----", text, re.S)
        jwes = [ln.strip() for ln in text.splitlines() if ln.strip().count(".") == 4 and "-----" not in ln]
        if not m or len(jwes) != 1:
            raise SigningKeyError("the key file needs a '-----BEGIN PRIVATE KEY-----' block and one JWE line "
                                  "(or the createSigningKey JSON)")
        out = {"private_key": m.group(0), "jwe": jwes[0], "key_id": "", "public_key": ""}
    register_secret(out["private_key"])
    Signer(out["jwe"], out["private_key"])  # raises SigningKeyError when unusable
    return out


async def create_signing_key(http: httpx.AsyncClient, settings: Settings, cipher: str = "ED25519") -> dict[str, Any]:
    """Key Management API ``createSigningKey`` (``POST /developer/key_management/v1/signing_key`` on the apiz
    host, application token; docs/ebay-api.md "Digital Signatures").  The answer -- ``signingKeyId``, ``signingKeyCipher``,
    ``privateKey`` (only ever returned here), ``publicKey``, ``jwe``, ``creationTime``, ``expirationTime``
    -- is returned as :func:`parse_key_file` output plus ``expires_at`` (a datetime or None)."""
    from datetime import datetime, timezone

    from .errors import EbayTransportError, error_from_response
    from .oauth import application_token

    token = await application_token(http, settings)
    url = settings.ebay_apiz_base_url.rstrip("/") + KEY_MANAGEMENT_PATH
    try:
        resp = await http.post(url, content=orjson.dumps({"signingKeyCipher": cipher}),
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                        "Accept": "application/json"})
    except httpx.HTTPError as e:
        raise EbayTransportError(None, None, None, f"Key Management API unreachable ({type(e).__name__})",
                                 method="POST", path=KEY_MANAGEMENT_PATH, api="key_management") from None
    if resp.status_code not in (200, 201):
        raise error_from_response(resp, api="key_management")
    try:
        data = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("privateKey"), str):
        register_secret(data["privateKey"])
    try:
        key: dict[str, Any] = dict(parse_key_file(resp.text))
    except SigningKeyError as e:
        raise SigningKeyError(f"createSigningKey answered an unusable key: {e}") from None
    exp = data.get("expirationTime") if isinstance(data, dict) else None
    key["expires_at"] = datetime.fromtimestamp(exp, timezone.utc) if isinstance(exp, int) else None
    return key
