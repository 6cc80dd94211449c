"""Alibaba Cloud request signatures, written from the published algorithms.

Two schemes, both used by ``alibabacloud-tea-openapi``:

* **ACS3-HMAC-SHA256** (V3, the SDK default)::

    CanonicalRequest = METHOD \\n path \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n HexSHA256(body)
    StringToSign     = "ACS3-HMAC-SHA256\\n" + HexSHA256(CanonicalRequest)
    Signature        = HexHMAC-SHA256(AccessKeySecret, StringToSign)

  ``CanonicalQuery`` is ``k=v`` pairs, RFC 3986 encoded (only ``~`` kept), sorted by key, joined
  with ``&``; ``CanonicalHeaders`` is ``name:value\\n`` for every signed header, lower-case,
  sorted. ``Authorization: ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex``.

* **V2 / HMAC-SHA1** (``signature_algorithm='v2'``): every query and form parameter but
  ``Signature``, encoded as above, sorted, joined; ``StringToSign = METHOD&%2F&enc(joined)``;
  ``Signature = Base64(HMAC-SHA1(secret + "&", StringToSign))``.

The module holds only the arithmetic; what is accepted (clock skew, nonces, which keys exist)
is decided in :mod:`.auth`. The signing helpers are used by the benchmark client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """Encode ``value`` the way both signature versions require (RFC 3986, ``~`` unescaped)."""
    return quote(value, safe="~")


def sha256_hex(data: bytes) -> str:
    """Return the lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Return the ACS3 canonical query string of decoded ``(key, value)`` pairs."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(pairs))


def canonical_headers(values: Mapping[str, list[str]], signed_headers: list[str]) -> str:
    """Return the ACS3 canonical header block for ``signed_headers`` (already lower-case, sorted).

    :param values: header name (lower-case) to every value received under that name.
    """
    lines = []
    for name in signed_headers:
        joined = ",".join(sorted(v.strip() for v in values.get(name, ())))
        lines.append(f"{name}:{joined}\n")
    return "".join(lines)


def acs3_string_to_sign(
    method: str,
    path: str,
    query_pairs: Iterable[tuple[str, str]],
    header_values: Mapping[str, list[str]],
    signed_headers: list[str],
    payload_sha256: str,
) -> str:
    """Return the ACS3 string to sign of one request."""
    canonical_request = "\n".join(
        (
            method.upper(),
            path or "/",
            canonical_query(query_pairs),
            canonical_headers(header_values, signed_headers),
            ";".join(signed_headers),
            payload_sha256,
        )
    )
    return f"{ACS3_ALGORITHM}\n{sha256_hex(canonical_request.encode())}"


def acs3_signature(secret: str, string_to_sign: str) -> str:
    """Return the hex HMAC-SHA256 of ``string_to_sign`` keyed with ``secret``."""
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def parse_acs3_authorization(value: str) -> tuple[str, list[str], str] | None:
    """Split an ``Authorization`` header into (AccessKey ID, signed headers, signature).

    :return: ``None`` when the header is not a well-formed ACS3-HMAC-SHA256 authorization.
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ACS3_ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    try:
        return fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]
    except KeyError:
        return None


def v2_signature(params: Mapping[str, str], method: str, secret: str) -> str:
    """Return the V2 (HMAC-SHA1) signature of ``params`` (query and form, without ``Signature``)."""
    joined = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method.upper()}&%2F&{percent_encode(joined)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def acs3_date(now: datetime | None = None) -> str:
    """Return ``now`` (default: the current time) in the ``x-acs-date`` format."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_acs3_headers(
    *,
    method: str,
    host: str,
    action: str,
    query: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    access_key_secret: str,
    version: str = "2024-05-18",
    content_type: str | None = None,
    security_token: str | None = None,
    date: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Build the headers of an ACS3-signed request, as the SDK would send them.

    :return: headers including ``Authorization``; send them with ``query`` and ``body`` unchanged.
    """
    headers = {
        "host": host,
        "x-acs-version": version,
        "x-acs-action": action,
        "x-acs-date": date or acs3_date(),
        "x-acs-signature-nonce": nonce or secrets.token_hex(16),
        "x-acs-content-sha256": sha256_hex(body),
        "accept": "application/json",
    }
    if content_type:
        headers["content-type"] = content_type
    if security_token:
        headers["x-acs-accesskey-id"] = access_key_id
        headers["x-acs-security-token"] = security_token
    signed = sorted(headers)
    to_sign = acs3_string_to_sign(
        method,
        "/",
        query.items(),
        {k: [v] for k, v in headers.items()},
        signed,
        headers["x-acs-content-sha256"],
    )
    signature = acs3_signature(access_key_secret, to_sign)
    headers["Authorization"] = (
        f"{ACS3_ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(signed)},Signature={signature}"
    )
    return headers
