# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The token rules: durations, claims, minting, decoding and verifying JWTs.

Minting serialises the JWS itself and signs with cryptography as RFC 7518
says (the bytes PyJWT's JWA classes make, held against them by the unit tests),
with the header segment computed once per key: a token then costs a signature
and a few microseconds of JSON, which is what the auth server's throughput
rests on, and minting never imports PyJWT (a third of the auth server's start
time and memory). Verification is PyJWT's, with the algorithm allow-list taken
from configuration (never from the token's header), ``exp`` required, and only
the given keys tried.

Tokens come from places nobody vouches for (files, Secrets, requests), so
reading one is bounded before any parsing (size, JSON nesting) and its dates
are checked to be real times before any arithmetic: whatever the input, the
answer is a one-line TokenFormatError or an invalid verdict with the reason.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from .errors import ClaimsError, TokenFormatError, looks_like_secret, shown, withheld
from .keys import (
    DEFAULT_ALGORITHM,
    PrivateKey,
    PublicKeyEntry,
    check_key_fits,
    jwk_thumbprint,
    key_fits,
    normalize_algorithm,
)

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
except ImportError:
    pass  # reported through keys.HAS_CRYPTO_LIBS, which every entry point checks

SYSTEM_USER = "okera_system_user"
DEFAULT_TTL = 24 * 3600
RESERVED_CLAIMS = frozenset(("sub", "iss", "aud", "exp", "nbf", "iat", "jti", "groups"))
# The option that sets each reserved claim, for error messages.
_OPTION_FOR_CLAIM = {"sub": "subject", "iss": "issuer", "aud": "audience", "exp": "ttl or expires_at",
                     "nbf": "not_before", "iat": "(set at minting)", "jti": "jti",
                     "groups": "groups"}

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# ASCII digits only: str.isdigit and \\d also take superscripts and other scripts' digits.
_DURATION_PART = re.compile(r"([0-9]+)([smhdw])")
_DURATION = re.compile(r"(?:[0-9]+[smhdw])+")
_DIGITS = re.compile(r"[0-9]+")
# The longest duration taken: past a century no lifetime, margin or timeout means anything, and
# every accepted one fits a float, a timedelta, a socket timeout and a date before the year 9999.
MAX_DURATION = 100 * 365 * 86400
# A duration text is a few characters (1h30m); a longer one is refused before any arithmetic.
_DURATION_TEXT_LIMIT = 64
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")

# Real tokens are a few hundred bytes, a few KiB with long group lists, and must fit in an
# HTTP header (servers cap those at 8 to 64 KiB); past this a "token" is junk or an attack,
# refused before any decoding so that reading it costs nothing and no report echoes it.
MAX_TOKEN_SIZE = 64 * 1024  # characters, which are bytes: a token is ASCII
# Claims are flat or a few levels deep; deeper JSON only serves to exhaust the parser's stack
# (json raises RecursionError near 1000 levels, sooner on a deep call stack).
MAX_JSON_DEPTH = 32
# A JSON string (an unterminated one runs to the end) or a bracket: enough to measure nesting
# in one linear pass without parsing, since brackets inside strings do not count.
_JSON_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.?)*(?:"|\Z)|[\[\]{}]', re.DOTALL)

# The NumericDate claims of RFC 7519, and the times they may hold here: the span of Python's
# datetime (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z), so that every accepted date can be
# compared, subtracted and shown. NaN, infinities and 1e300 fall outside.
NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")
_MIN_EPOCH = -62135596800
_MAX_EPOCH = 253402300799
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _kind(value: Any) -> str:
    """What a message calls a value of the wrong type: null, or a list, a dict, ..."""
    return "null" if value is None else "a " + type(value).__name__


def _whole_seconds(value: Any, what: str) -> Optional[int]:
    """``value`` as whole seconds (a float's fraction dropped) when it is a number; None when it is
    no number; ClaimsError for a boolean, NaN or an infinity."""
    if isinstance(value, bool):
        raise ClaimsError("%s %s is not a number of seconds" % (what, shown(value)))
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ClaimsError("%s %s is not a finite number of seconds" % (what, shown(value)))
        return int(value)
    return None


def parse_duration(value: Union[int, float, str]) -> int:
    """Seconds in ``value``: an integer, or text such as ``30d``, ``24h``, ``90m``, ``1h30m``;
    longer than zero and at most MAX_DURATION. Anything else is a one-line ClaimsError."""
    seconds = _whole_seconds(value, "duration")
    if seconds is None:
        if not isinstance(value, str):
            raise ClaimsError("a duration is a number of seconds or a text such as 24h, not %s" % _kind(value))
        text = value.strip().lower().replace(" ", "")
        if len(text) > _DURATION_TEXT_LIMIT:
            raise ClaimsError("a duration of %d characters is too long: write seconds or a number with "
                              "s, m, h, d or w, e.g. 30d, 24h, 90m" % len(value))
        if _DIGITS.fullmatch(text):
            seconds = int(text)
        elif _DURATION.fullmatch(text):
            seconds = sum(int(number) * _DURATION_UNITS[unit]
                          for number, unit in _DURATION_PART.findall(text))
        else:
            raise ClaimsError(
                "duration %s is not understood: write seconds or a number with s, m, h, d "
                "or w, e.g. 30d, 24h, 90m" % shown(value))
    if seconds <= 0:
        raise ClaimsError("duration %s must be longer than zero" % shown(value))
    if seconds > MAX_DURATION:
        # No repr of the value: a huge int has no printable form past 4300 digits.
        raise ClaimsError("a duration must be at most 100 years (%d seconds)" % MAX_DURATION)
    return seconds


def parse_time(value: Union[int, float, str]) -> int:
    """Epoch seconds from an integer or an ISO 8601 text (UTC when no offset is given), within
    the years 1 to 9999. Anything else is a one-line ClaimsError."""
    epoch = _whole_seconds(value, "time")
    if epoch is None:
        if not isinstance(value, str):
            raise ClaimsError("a time is an epoch number or an ISO 8601 text, not %s" % _kind(value))
        text = value.strip()
        if len(text) > _DURATION_TEXT_LIMIT:
            raise ClaimsError("a time of %d characters is too long: give an epoch number or an ISO 8601 "
                              "date such as 2030-01-31T00:00:00Z" % len(value))
        if _DIGITS.fullmatch(text):
            epoch = int(text)
        else:
            try:
                moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise ClaimsError("time %s is not an epoch number or an ISO 8601 date such as "
                                  "2030-01-31T00:00:00Z" % shown(text)) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            epoch = int(moment.timestamp())
    if not is_numeric_date(epoch):
        raise ClaimsError("a time must be seconds since 1970 within the years 1 to 9999")
    return epoch


def is_numeric_date(value: Any) -> bool:
    """Whether ``value`` is a NumericDate this library accepts: a JSON number (not a boolean)
    of seconds since 1970, finite and within the years 1 to 9999."""
    # NaN fails every comparison, so it is refused with the infinities.
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and _MIN_EPOCH <= value <= _MAX_EPOCH)


def iso8601(epoch: Union[int, float]) -> str:
    """UTC ISO 8601 text of an epoch time, e.g. 2026-12-23T07:50:00Z."""
    if not is_numeric_date(epoch):
        # No repr of the value: a huge int has no printable form past 4300 digits.
        raise ClaimsError("a time must be a finite number of seconds since 1970 within the "
                          "years 1 to 9999")
    # Arithmetic rather than fromtimestamp, which fails outside the platform's time_t.
    moment = _EPOCH + datetime.timedelta(seconds=int(epoch))
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class TokenSpec:
    """What a token should say. ``expires_at`` wins over ``ttl`` when both are given."""

    subject: str
    issuer: Optional[str] = None
    audience: Union[str, Sequence[str], None] = None
    groups: Optional[Sequence[str]] = None
    ttl: int = DEFAULT_TTL
    expires_at: Optional[int] = None
    not_before: Optional[int] = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    jti: Union[bool, str] = False

    def validate(self) -> None:
        if not isinstance(self.subject, str) or not self.subject.strip():
            raise ClaimsError("subject is required and must be a non-empty text")
        if self.groups is not None and (isinstance(self.groups, str) or not all(
                isinstance(group, str) for group in self.groups)):
            raise ClaimsError("groups must be a list of texts")
        if self.audience is not None and not isinstance(self.audience, str) and not all(
                isinstance(item, str) for item in self.audience):
            raise ClaimsError("audience must be a text or a list of texts")
        for name, value in self._texts():
            if looks_like_secret(value):
                raise ClaimsError("%s looks like a key or a token %s: give the %s itself"
                                  % (name, withheld(value), name))
        clash = sorted(RESERVED_CLAIMS.intersection(self.claims))
        if clash:
            raise ClaimsError(
                "claims may not set the reserved claim(s) %s: use %s instead"
                % (", ".join(clash), ", ".join(_OPTION_FOR_CLAIM[name] for name in clash)))
        try:
            json.dumps(dict(self.claims))
        except (TypeError, ValueError):
            raise ClaimsError("claims must hold only JSON values (texts, numbers, "
                              "booleans, lists, objects)") from None

    def _texts(self):
        """(option, text) for each text that goes into the token, e.g. ("subject", "jane")."""
        yield "subject", self.subject
        yield "issuer", self.issuer or ""
        for option, values in (("audience", self.audience), ("groups", self.groups)):
            for value in [values] if isinstance(values, str) else values or []:
                yield option, value
        for name, value in self.claims.items():
            yield "claim %s" % shown(name), name
            if isinstance(value, str):
                yield "claim %s" % shown(name), value

    def expected_claims(self) -> dict:
        """The claims that identify this token, without the times that change on every mint."""
        wanted: dict = {"sub": self.subject}
        if self.issuer is not None:
            wanted["iss"] = self.issuer
        if self.audience is not None:
            wanted["aud"] = self.audience if isinstance(self.audience, str) else list(self.audience)
        if self.groups is not None:
            wanted["groups"] = list(self.groups)
        if self.not_before is not None:
            wanted["nbf"] = int(self.not_before)
        if self.expires_at is not None:
            wanted["exp"] = int(self.expires_at)
        wanted.update(self.claims)
        return wanted


def build_claims(spec: TokenSpec, now: int) -> dict:
    spec.validate()
    expires_at = int(spec.expires_at) if spec.expires_at is not None else now + int(spec.ttl)
    # Never mint what verify refuses.
    if not is_numeric_date(expires_at) or (
            spec.not_before is not None and not is_numeric_date(spec.not_before)):
        raise ClaimsError("the token's times must lie within the years 1 to 9999: give a "
                          "shorter ttl or an earlier expires_at or not_before")
    if expires_at <= now:
        raise ClaimsError("the token would expire at %s, which is not in the future: give a "
                          "later expires_at or a positive ttl" % iso8601(expires_at))
    if spec.not_before is not None and int(spec.not_before) >= expires_at:
        raise ClaimsError("not_before %s is not before the expiry %s"
                          % (iso8601(spec.not_before), iso8601(expires_at)))
    claims = spec.expected_claims()
    claims["iat"] = now
    claims["exp"] = expires_at
    if spec.jti:
        claims["jti"] = spec.jti if isinstance(spec.jti, str) else secrets.token_hex(16)
    return claims


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _json_bytes(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def jws_signature_function(algorithm: str, private_key: PrivateKey) -> Callable[[bytes], bytes]:
    """The function that makes the JWS signature of RFC 7518 for ``algorithm`` (a JWA name
    that fits ``private_key``): RS* RSASSA-PKCS1-v1_5, PS* RSASSA-PSS with MGF1 and a salt of
    the digest's size, ES* ECDSA as the fixed-size big-endian r || s (not DER), EdDSA."""
    if algorithm == "EdDSA":
        return private_key.sign
    digest = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}[algorithm[2:]]()
    if algorithm.startswith(("RS", "PS")):
        scheme = padding.PKCS1v15() if algorithm.startswith("RS") else padding.PSS(
            mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        return lambda data: private_key.sign(data, scheme, digest)
    ecdsa = ec.ECDSA(digest)
    size = (private_key.curve.key_size + 7) // 8

    def sign_ecdsa(data: bytes) -> bytes:
        r, s = decode_dss_signature(private_key.sign(data, ecdsa))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return sign_ecdsa


class Signer:
    """A loaded private key ready to sign: the key check, ``kid`` and header are done once."""

    def __init__(self, private_key: PrivateKey, algorithm: str = DEFAULT_ALGORITHM,
                 kid: Optional[str] = None) -> None:
        """``kid`` None uses the RFC 7638 thumbprint; an empty text leaves ``kid`` out."""
        self.algorithm = normalize_algorithm(algorithm)
        check_key_fits(self.algorithm, private_key)
        self.private_key = private_key
        self.public_key = private_key.public_key()
        if kid is not None and looks_like_secret(kid):
            raise ClaimsError("kid looks like a key or a token %s: give the key id itself" % withheld(kid))
        self.kid = jwk_thumbprint(self.public_key) if kid is None else kid
        self.header = {"alg": self.algorithm, "typ": "JWT"}
        if self.kid:
            self.header["kid"] = self.kid
        # The first part of every token's signing input, and what signs it.
        self.header_segment = _b64url(_json_bytes(self.header))
        self.signature = jws_signature_function(self.algorithm, private_key)

    def sign(self, claims: Mapping[str, Any]) -> str:
        signing_input = self.header_segment + b"." + _b64url(_json_bytes(claims))
        return (signing_input + b"." + _b64url(self.signature(signing_input))).decode("ascii")


@dataclass(frozen=True)
class MintedToken:
    token: str
    header: dict
    claims: dict
    expires_at: int


def mint(signer: Signer, spec: TokenSpec, now: Optional[int] = None) -> MintedToken:
    claims = build_claims(spec, int(time.time()) if now is None else int(now))
    return MintedToken(token=signer.sign(claims), header=dict(signer.header), claims=claims,
                       expires_at=claims["exp"])


@dataclass(frozen=True)
class DecodedToken:
    """A token's header and claims, read without checking the signature."""

    header: dict
    claims: dict


def _decode_segment(segment: str, part: str) -> bytes:
    if not _BASE64URL.fullmatch(segment):
        raise TokenFormatError("the token's %s is not base64url text" % part)
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenFormatError("the token's %s is not valid base64url" % part) from None


def json_nests_too_deep(text: str) -> bool:
    """Whether ``text`` opens more than MAX_JSON_DEPTH arrays or objects inside each other
    (measured without parsing it, so that a deep document never reaches the parser)."""
    depth = 0
    for match in _JSON_STRING_OR_BRACKET.finditer(text):
        mark = match.group()
        if mark in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif mark in ("]", "}"):
            depth -= 1
    return False


def _check_json_depth(text: str, part: str) -> None:
    if json_nests_too_deep(text):
        raise TokenFormatError("the token's %s nests JSON deeper than %d levels"
                               % (part, MAX_JSON_DEPTH))


def _decode_json_segment(segment: str, part: str) -> dict:
    try:
        text = _decode_segment(segment, part).decode("utf-8")
    except UnicodeDecodeError:
        raise TokenFormatError("the token's %s is not JSON" % part) from None
    _check_json_depth(text, part)
    try:
        # Python's json also reads NaN and Infinity, which is_numeric_date refuses as dates;
        # an int of more than 4300 digits is a ValueError.
        value = json.loads(text)
    except ValueError:
        raise TokenFormatError("the token's %s is not JSON" % part) from None
    if not isinstance(value, dict):
        raise TokenFormatError("the token's %s is not a JSON object" % part)
    return value


def _looks_base64_wrapped(text: str) -> bool:
    try:
        return base64.b64decode(text, validate=True).count(b".") == 2
    except (binascii.Error, ValueError):
        return False


def _token_text(token: Union[str, bytes]) -> str:
    """The token as text without surrounding white space (files end with a newline)."""
    if len(token) > MAX_TOKEN_SIZE:
        raise TokenFormatError("the token is %d characters long; at most %d are read"
                               % (len(token), MAX_TOKEN_SIZE))
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise TokenFormatError("the token is not ASCII text") from None
    return token.strip()


def decode_unverified(token: Union[str, bytes]) -> DecodedToken:
    """Header and claims of a compact JWS; raises TokenFormatError with the reason."""
    text = _token_text(token)
    if not text:
        raise TokenFormatError("the token is empty")
    parts = text.split(".")
    if len(parts) != 3:
        hint = (": it looks base64-encoded (as in a Secret's data); decode it first"
                if len(parts) == 1 and _looks_base64_wrapped(text) else "")
        raise TokenFormatError("a JWT has three dot-separated parts; this one has %d%s"
                               % (len(parts), hint))
    header = _decode_json_segment(parts[0], "header")
    claims = _decode_json_segment(parts[1], "payload")
    _decode_segment(parts[2], "signature")
    return DecodedToken(header=header, claims=claims)


def expiry_facts(claims: Mapping[str, Any], now: Optional[float] = None) -> dict:
    """``expires_at`` (ISO 8601), ``expires_in`` (seconds) and ``expired`` from ``exp``.

    All None when there is no ``exp`` or it is not a NumericDate (a text, a boolean, NaN,
    1e300): such a token has no expiry to report, and verify refuses it.
    """
    exp = claims.get("exp")
    if not is_numeric_date(exp):
        return {"expires_at": None, "expires_in": None, "expired": None}
    remaining = int(exp - (time.time() if now is None else now))
    return {"expires_at": iso8601(exp), "expires_in": remaining, "expired": remaining <= 0}


@dataclass(frozen=True)
class VerificationResult:
    valid: bool
    reason: Optional[str]
    header: dict
    claims: dict
    kid: Optional[str] = None  # kid of the key that verified the signature


def verify(token: Union[str, bytes], keys: Sequence[PublicKeyEntry],
           algorithms: Iterable[str], leeway: Union[int, float] = 0,
           issuer: Optional[str] = None, audience: Union[str, Sequence[str], None] = None,
           subject: Optional[str] = None) -> VerificationResult:
    """Check signature and claims. Malformed tokens raise TokenFormatError; bad ones are invalid.

    Only algorithms in ``algorithms`` are accepted, whatever the header says; a
    header ``kid`` picks among the given keys but never brings in another.
    """
    token = _token_text(token)
    decoded = decode_unverified(token)
    header, claims = decoded.header, decoded.claims

    def invalid(reason: str) -> VerificationResult:
        return VerificationResult(False, reason, header, claims)

    allowed = sorted({normalize_algorithm(name) for name in algorithms})
    if not allowed:
        raise ClaimsError("no algorithm allowed: give the algorithms the cluster uses, e.g. RS512")
    algorithm = header.get("alg")
    if algorithm not in allowed:
        return invalid("the token's algorithm %s is not allowed (allowed: %s)"
                       % (shown(algorithm), ", ".join(allowed)))
    if "crit" in header:
        return invalid("the token names critical header parameters %s that this verifier "
                       "does not support" % shown(header["crit"]))
    # Checked here, not left to PyJWT, which takes "9999999999" and true for numbers and
    # fails on 1e300 and NaN with errors that do not name the claim.
    for name in NUMERIC_DATE_CLAIMS:
        if name in claims and not is_numeric_date(claims[name]):
            return invalid("the token's %s claim is not a NumericDate (a JSON number of seconds "
                           "since 1970, within the years 1 to 9999)" % shown(name))
    import jwt  # pylint: disable=import-outside-toplevel  # only verifying needs PyJWT (see the top)

    candidates = [entry for entry in keys if key_fits(algorithm, entry.key)]
    if not candidates:
        return invalid("none of the %d given key(s) can verify %s" % (len(keys), algorithm))
    kid = header.get("kid")
    if any(entry.kid == kid for entry in candidates):
        candidates = [entry for entry in candidates if entry.kid == kid]
    for entry in candidates:
        try:
            verified = jwt.decode(
                token, entry.key, algorithms=[algorithm], leeway=leeway, issuer=issuer,
                audience=audience, subject=subject, options={"require": ["exp"]})
        except jwt.exceptions.InvalidSignatureError:
            continue
        except jwt.exceptions.ExpiredSignatureError:
            return invalid("the token expired at %s" % iso8601(claims["exp"]))
        except jwt.exceptions.ImmatureSignatureError:
            # PyJWT raises this for an nbf, or an iat, still in the future.
            start = claims.get("nbf", claims.get("iat"))
            return invalid("the token is not valid before %s" % iso8601(start))
        except jwt.exceptions.MissingRequiredClaimError as error:
            return invalid("the token has no %s claim" % shown(error.claim))
        except jwt.exceptions.InvalidIssuerError:
            return invalid("the token's issuer %s is not the expected %s"
                           % (shown(claims.get("iss")), shown(issuer)))
        except jwt.exceptions.InvalidAudienceError:
            return invalid("the token's audience %s does not match the expected %s"
                           % (shown(claims.get("aud")), shown(audience)))
        except jwt.exceptions.InvalidSubjectError:
            return invalid("the token's subject %s is not the expected %s"
                           % (shown(claims.get("sub")), shown(subject)))
        except jwt.exceptions.InvalidTokenError as error:
            return invalid("the token was rejected: %s" % error)
        return VerificationResult(True, None, header, verified, entry.kid)
    return invalid("the signature does not verify with any of the %d given key(s)"
                   % len(candidates))


def renewal_reason(existing: Optional[str], signer: Signer, spec: TokenSpec,
                   renew_before: int, now: Optional[int] = None) -> Optional[str]:
    """Why a token kept on disk must be minted again, or None to keep it.

    A kept token verifies with the signer's key and algorithm, carries exactly
    the wanted claims (times aside: ``iat`` and ``jti`` differ on every mint and
    never cause a change by themselves), lives no longer than the wanted ttl,
    and has more than ``renew_before`` seconds left.
    """
    if existing is None:
        return "there is no token yet"
    now = int(time.time()) if now is None else int(now)
    try:
        result = verify(existing, [PublicKeyEntry(signer.public_key, signer.kid or "")],
                        [signer.algorithm])
    except TokenFormatError as error:
        return "the existing token is malformed (%s)" % error
    if not result.valid:
        return "the existing token does not verify: %s" % result.reason
    if result.header.get("kid") != (signer.kid or None):
        return "the existing token names another key id"
    wanted = spec.expected_claims()
    claims = result.claims
    changed = sorted(name for name in set(wanted) | set(claims)
                     if name not in ("iat", "exp", "jti") and claims.get(name) != wanted.get(name))
    if spec.expires_at is not None and claims.get("exp") != int(spec.expires_at):
        changed.append("exp")
    if spec.jti and (claims.get("jti") is None or (
            isinstance(spec.jti, str) and claims["jti"] != spec.jti)):
        changed.append("jti")
    if changed:
        return "the wanted claims differ: %s" % ", ".join(changed)
    remaining = int(claims["exp"]) - now
    if spec.expires_at is None and remaining > int(spec.ttl) + 60:
        return "the existing token lives longer than the wanted ttl"
    if remaining <= renew_before:
        return "the existing token expires in %ds, within renew_before (%ds)" % (
            remaining, renew_before)
    return None


def token_summary(token: str) -> dict:
    """What a diff or a report may show of a token: header, claims, times, a hash; never the token."""
    summary: dict = {"sha256": hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()}
    try:
        decoded = decode_unverified(token)
    except TokenFormatError as error:
        summary["malformed"] = str(error)
        return summary
    claims = dict(decoded.claims)
    for name in NUMERIC_DATE_CLAIMS:
        if is_numeric_date(claims.get(name)):
            claims[name] = iso8601(claims[name])
    summary.update(alg=decoded.header.get("alg"), kid=decoded.header.get("kid"), claims=claims)
    return summary
