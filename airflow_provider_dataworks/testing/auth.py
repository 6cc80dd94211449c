"""Who may call the emulator: AccessKey pairs, STS tokens, clock skew and nonce replay.

The checks mirror the Alibaba Cloud API gateway, in this order: the AccessKey exists, the
timestamp is within 15 minutes, the signature matches, the body matches
``x-acs-content-sha256``, the STS token matches, and the nonce was not used before. A nonce is
remembered only once the request is otherwise valid, so a rejected request never burns one.
"""

from __future__ import annotations

import calendar
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import signature
from .errors import ApiError

#: Account ID reported as ``Creator`` for credentials that configure none.
DEFAULT_ACCOUNT_ID = "1379463177660000"
#: Accepted distance between the request's timestamp and the emulator's clock.
MAX_CLOCK_SKEW_SECONDS = 15 * 60


@dataclass(frozen=True)
class Credential:
    """An AccessKey pair the emulator accepts, optionally an STS token and a project allow-list.

    :param access_key_id: the AccessKey ID (``Credential=`` of the signature).
    :param access_key_secret: the secret the signature is checked with.
    :param security_token: when set, requests must carry exactly this STS token.
    :param account_id: the account reported as ``Creator`` of runs this credential creates.
    :param projects: workspace IDs this credential may use; ``None`` means all of them.
    """

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    account_id: str = DEFAULT_ACCOUNT_ID
    projects: frozenset[int] | None = field(default=None)

    def may_access(self, project_id: int) -> bool:
        """Tell whether this credential may use workspace ``project_id``."""
        return self.projects is None or project_id in self.projects

    def to_json(self) -> dict[str, Any]:
        """Return the seed-file form of this credential."""
        return {
            "access_key_id": self.access_key_id,
            "access_key_secret": self.access_key_secret,
            "security_token": self.security_token,
            "account_id": self.account_id,
            "projects": None if self.projects is None else sorted(self.projects),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Credential:
        """Build a credential from its seed-file form."""
        projects = data.get("projects")
        return cls(
            access_key_id=str(data["access_key_id"]),
            access_key_secret=str(data["access_key_secret"]),
            security_token=data.get("security_token") or None,
            account_id=str(data.get("account_id") or DEFAULT_ACCOUNT_ID),
            projects=None if projects is None else frozenset(int(p) for p in projects),
        )


class NonceCache:
    """Remember signature nonces for the replay window, in bounded memory.

    Entries leave after ``window_seconds`` (older requests fail the timestamp check anyway) or,
    under sustained load, once ``max_entries`` is reached, oldest first.
    """

    def __init__(self, window_seconds: float = MAX_CLOCK_SKEW_SECONDS, max_entries: int = 100_000) -> None:
        self._window = window_seconds
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, nonce: str, now: float) -> bool:
        """Record ``nonce``; return ``False`` when it was already used inside the window."""
        seen = self._seen
        horizon = now - self._window
        while seen and (len(seen) >= self._max or next(iter(seen.values())) < horizon):
            seen.popitem(last=False)
        if nonce in seen:
            return False
        seen[nonce] = now
        return True

    def clear(self) -> None:
        """Forget every nonce."""
        self._seen.clear()


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that signatures cover (query and form already decoded)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    headers: Mapping[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (lower-case), if any."""
        values = self.headers.get(name)
        return values[0] if values else None


def _error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, code, message)


class Authenticator:
    """Check ACS3 and V2 signatures against the configured credentials.

    :param clock: returns the current epoch time in seconds.
    """

    def __init__(self, credentials: Iterable[Credential] = (), clock: Callable[[], float] = time.time) -> None:
        self.credentials: dict[str, Credential] = {c.access_key_id: c for c in credentials}
        self.nonces = NonceCache()
        self._clock = clock
        self._last_date: tuple[str, float] = ("", 0.0)

    def add(self, credential: Credential) -> None:
        """Accept ``credential`` (replacing one with the same AccessKey ID)."""
        self.credentials[credential.access_key_id] = credential

    def verify(self, request: SignedRequest) -> Credential:
        """Return the credential that signed ``request``, or raise the gateway's :class:`ApiError`."""
        authorization = request.header("authorization")
        if authorization:
            return self._verify_acs3(request, authorization)
        if any(k == "Signature" for k, _ in request.query):
            return self._verify_v2(request)
        raise _error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")

    def _credential(self, access_key_id: str) -> Credential:
        credential = self.credentials.get(access_key_id)
        if credential is None:
            raise _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        return credential

    def _check_time(self, stamp: str | None) -> None:
        if not stamp:
            raise _error(400, "MissingTimestamp", "The request timestamp (x-acs-date) is missing.")
        last, epoch = self._last_date
        if stamp != last:
            try:
                epoch = float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
            except ValueError:
                raise _error(
                    400, "InvalidTimeStamp.Format", f"Specified time stamp {stamp} is not well formatted."
                ) from None
            self._last_date = (stamp, epoch)
        if abs(self._clock() - epoch) > MAX_CLOCK_SKEW_SECONDS:
            raise _error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")

    def _check_token(self, credential: Credential, token: str | None) -> None:
        if (token or None) == credential.security_token:
            return
        if credential.security_token and not token:
            raise _error(400, "MissingSecurityToken", "SecurityToken is mandatory for this AccessKey.")
        raise _error(400, "InvalidSecurityToken.Mismatch", "The security token does not match the AccessKey ID.")

    def _check_nonce(self, nonce: str | None) -> None:
        if not nonce:
            raise _error(400, "MissingSignatureNonce", "The signature nonce is missing.")
        if not self.nonces.check_and_add(nonce, self._clock()):
            raise _error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")

    def _verify_acs3(self, request: SignedRequest, authorization: str) -> Credential:
        parsed = signature.parse_acs3_authorization(authorization)
        if parsed is None:
            raise _error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        access_key_id, signed_headers, received = parsed
        credential = self._credential(access_key_id)
        self._check_time(request.header("x-acs-date"))
        actual_sha = signature.sha256_hex(request.body) if request.body else signature.EMPTY_BODY_SHA256
        claimed_sha = request.header("x-acs-content-sha256") or actual_sha
        to_sign = signature.acs3_string_to_sign(
            request.method, request.path, request.query, request.headers, signed_headers, claimed_sha
        )
        if signature.acs3_signature(credential.access_key_secret, to_sign) != received:
            raise _error(
                400,
                "SignatureDoesNotMatch",
                f"Specified signature is not matched with our calculation. server string to sign is:{to_sign}",
            )
        if claimed_sha != actual_sha:
            raise _error(
                400,
                "ContentSHA256Mismatch",
                "The x-acs-content-sha256 header does not match the SHA-256 of the request body.",
            )
        self._check_token(credential, request.header("x-acs-security-token"))
        self._check_nonce(request.header("x-acs-signature-nonce"))
        return credential

    def _verify_v2(self, request: SignedRequest) -> Credential:
        params = dict(request.form)
        params.update(request.query)
        received = params.pop("Signature", "")
        credential = self._credential(params.get("AccessKeyId", ""))
        self._check_time(params.get("Timestamp"))
        expected = signature.v2_signature(params, request.method, credential.access_key_secret)
        if expected != received:
            raise _error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        self._check_token(credential, params.get("SecurityToken"))
        self._check_nonce(params.get("SignatureNonce"))
        return credential
