# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Algorithm names and keys: the one place that knows which key signs with what.

Private keys are accepted in the forms admins really hold: PKCS#1 PEM
(``ssh-keygen -m PEM``), PKCS#8 PEM, encrypted PEM, the OpenSSH format that a
plain ``ssh-keygen`` writes, and base64 of any of these (the form Kubernetes
Secrets keep). Public keys: PEM (SubjectPublicKeyInfo or PKCS#1), X.509
certificates, OpenSSH public lines, JWK and JWKS, several at once (Okera's
``JWT_PUBLIC_KEY`` is a comma-separated list). Loading validates a key, which
costs tens of milliseconds for RSA: load once, sign many times.

PyJWT is imported only where it is used (reading a JWK): what signs (the key,
its JWK and thumbprint) needs cryptography alone, so that the auth server
starts without PyJWT; certificates (cryptography.x509) are likewise imported
when a certificate is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import json
import re
import secrets
import traceback
from dataclasses import dataclass
from typing import Iterable, Optional, Union

from .errors import AlgorithmError, KeyLoadError, shown
from .files import read_bounded

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    if importlib.util.find_spec("jwt") is None:  # found now, imported where it is used
        raise ImportError("No module named 'jwt' (PyJWT)", name="jwt")
except ImportError:
    HAS_CRYPTO_LIBS = False
    CRYPTO_LIBS_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    HAS_CRYPTO_LIBS = True
    CRYPTO_LIBS_IMPORT_ERROR = None

CRYPTO_LIBS = "PyJWT and cryptography"

DEFAULT_ALGORITHM = "RS512"
SUPPORTED_ALGORITHMS = (
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
)
MIN_RSA_BITS = 2048

# ES algorithms name the one curve they sign with (RFC 7518 section 3.4).
_EC_CURVE_BY_ALGORITHM = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_CURVE_LABEL = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
# The curves a JWK can name (RFC 7518 section 6.2.1.1, RFC 8812 for secp256k1).
_JWK_CURVES = dict(_CURVE_LABEL, secp256k1="secp256k1")
# Okera writes rsa512 / RSA512 / rsa256 where JWA writes RS512 / RS256.
_OKERA_SPELLING = re.compile(r"RSA?(256|384|512)")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_SSH_PUBLIC_LINE = re.compile(rb"(ssh-rsa|ssh-ed25519|ssh-ed448|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+")

PrivateKey = Union["rsa.RSAPrivateKey", "ec.EllipticCurvePrivateKey",
                   "ed25519.Ed25519PrivateKey", "ed448.Ed448PrivateKey"]
PublicKey = Union["rsa.RSAPublicKey", "ec.EllipticCurvePublicKey",
                  "ed25519.Ed25519PublicKey", "ed448.Ed448PublicKey"]


def normalize_algorithm(name: str) -> str:
    """Return the JWA name for ``name``, accepting Okera's spellings (rsa512, RSA256)."""
    text = str(name).strip()
    upper = text.upper()
    match = _OKERA_SPELLING.fullmatch(upper)
    if match:
        return "RS" + match.group(1)
    if upper == "EDDSA":
        return "EdDSA"
    if upper in SUPPORTED_ALGORITHMS:
        return upper
    if upper == "NONE" or upper.startswith("HS"):
        raise AlgorithmError(
            "algorithm %s is refused: tokens here are signed with a private key and verified "
            "with its public key; use one of %s" % (shown(text), ", ".join(SUPPORTED_ALGORITHMS)))
    raise AlgorithmError(
        "unknown algorithm %s: use one of %s (or Okera's rsa256 / rsa512)"
        % (shown(text), ", ".join(SUPPORTED_ALGORITHMS)))


def describe_key(key: Union[PrivateKey, PublicKey]) -> str:
    """A short, secret-free description such as 'RSA 2048' or 'EC P-256'."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RSA %d" % key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "EC %s" % _CURVE_LABEL.get(key.curve.name, key.curve.name)
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "Ed448"
    return type(key).__name__


def key_fits(algorithm: str, key: Union[PrivateKey, PublicKey]) -> bool:
    """Whether ``key`` (private or public) can sign or verify with JWA ``algorithm``."""
    if algorithm[:2] in ("RS", "PS"):
        return isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey))
    if algorithm in _EC_CURVE_BY_ALGORITHM:
        return (isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey))
                and key.curve.name == _EC_CURVE_BY_ALGORITHM[algorithm])
    if algorithm == "EdDSA":
        return isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey,
                                ed448.Ed448PrivateKey, ed448.Ed448PublicKey))
    return False


def check_key_fits(algorithm: str, key: Union[PrivateKey, PublicKey]) -> None:
    if not key_fits(algorithm, key):
        if algorithm[:2] in ("RS", "PS"):
            wanted = "an RSA key"
        elif algorithm == "EdDSA":
            wanted = "an Ed25519 or Ed448 key"
        else:
            wanted = "an EC %s key" % _CURVE_LABEL[_EC_CURVE_BY_ALGORITHM[algorithm]]
        raise AlgorithmError(
            "algorithm %s needs %s, but the key is %s: choose the algorithm that fits the key"
            % (algorithm, wanted, describe_key(key)))


def _as_bytes(data: Union[bytes, str]) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _unwrap_base64(raw: bytes) -> bytes:
    """Undo the base64 that Kubernetes Secrets put around a PEM or JSON key."""
    if raw.startswith(b"-----BEGIN") or raw.startswith(b"{") or _SSH_PUBLIC_LINE.match(raw):
        return raw
    try:
        decoded = base64.b64decode(b"".join(raw.split()), validate=True).strip()
    except (binascii.Error, ValueError):
        return raw
    return decoded if decoded.startswith((b"-----BEGIN", b"{", b"ssh-", b"ecdsa-")) else raw


def _check_strength(key: Union[PrivateKey, PublicKey]) -> None:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)) and key.key_size < MIN_RSA_BITS:
        raise KeyLoadError(
            "the RSA key has %d bits; at least %d are required: make a new key, e.g. "
            "ssh-keygen -t rsa -b 4096 -m PEM" % (key.key_size, MIN_RSA_BITS))
    if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey,
                            ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey,
                            ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey,
                            ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        raise KeyLoadError("%s keys cannot sign JWTs: use an RSA, EC or Ed25519 key"
                           % describe_key(key))


def load_private_key(data: Union[bytes, str],
                     passphrase: Union[bytes, str, None] = None,
                     own_key: bool = False) -> PrivateKey:
    """Parse and validate a private key (PEM, encrypted PEM, OpenSSH, or base64 of those).

    ``own_key`` True is for a key that only its owner can have put where it is read (the
    auth server's own key file or secret): an RSA key is then not put through OpenSSL's full
    check (prime tests of p and q, 30 to 50 ms for RSA-2048, the most of the server's key
    load) but proven by one signature that its public half verifies (under 1 ms), which
    refuses a key whose tokens would not verify (a damaged or mismatched n, e or d); OpenSSL
    checks each RSA signature it makes and never hands out a miscalculated one. Whoever can
    replace that key can sign with a valid key of their own anyway, so skipping the prime
    tests opens nothing; a key from anyone else (a module's input) is always checked in full.
    """
    raw = _unwrap_base64(_as_bytes(data).strip())
    if not raw:
        raise KeyLoadError("the private key is empty: give a PEM or OpenSSH private key")
    password = _as_bytes(passphrase) if passphrase else None
    openssh = raw.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    if not openssh and not raw.startswith(b"-----BEGIN"):
        raise KeyLoadError(
            "the private key is not PEM, OpenSSH, or base64 of either: give the key file "
            "as written by ssh-keygen or openssl")
    if not openssh and b"PRIVATE KEY-----" not in raw.split(b"\n", 1)[0]:
        raise KeyLoadError(
            "a private key was expected but this PEM holds something else (a public key or "
            "a certificate?): give the private key")
    loader = serialization.load_ssh_private_key if openssh else serialization.load_pem_private_key
    skip_checks = {"unsafe_skip_rsa_key_validation": True} if own_key else {}
    try:
        try:
            key = loader(raw, password, **skip_checks)
        except TypeError:
            if password is None:
                raise KeyLoadError(
                    "the private key is encrypted: give its passphrase") from None
            # A passphrase given for a key that has none is harmless: load it as is.
            key = loader(raw, None, **skip_checks)
    except ValueError as error:
        if password is not None and (b"ENCRYPTED" in raw or openssh):
            raise KeyLoadError(
                "could not decrypt the private key: check the passphrase") from None
        raise KeyLoadError("the private key could not be parsed (%s): check that the "
                           "file is complete" % _safe_reason(error)) from None
    except UnsupportedAlgorithm as error:
        if "bcrypt" in str(error):
            raise KeyLoadError("encrypted OpenSSH keys need the Python package bcrypt: "
                               "pip install bcrypt") from None
        raise KeyLoadError("the private key's type or cipher is not supported: use an "
                           "RSA, EC or Ed25519 key") from None
    _check_strength(key)
    if own_key and isinstance(key, rsa.RSAPrivateKey):
        _check_rsa_signs(key)
    return key


def _check_rsa_signs(key: "rsa.RSAPrivateKey") -> None:
    """Refuse an RSA key whose signature its own public key does not verify."""
    probe = secrets.token_bytes(32)
    try:
        key.public_key().verify(key.sign(probe, padding.PKCS1v15(), hashes.SHA256()), probe,
                                padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise KeyLoadError("the RSA private key is damaged: its signatures do not verify with "
                           "its public key; give the key file as ssh-keygen or openssl wrote "
                           "it") from None


def _safe_reason(error: Exception) -> str:
    # cryptography's messages name formats, never key bytes; keep only the first line.
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:160]


def load_private_key_file(path: str,
                          passphrase: Union[bytes, str, None] = None) -> PrivateKey:
    return load_private_key(read_bounded(path, "private key"), passphrase)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int, bits: int = 0) -> str:
    """A JWK integer (RFC 7518 section 6): big-endian, in ``bits`` bits (EC coordinates) or
    the fewest bytes (RSA's n and e)."""
    return _b64url(value.to_bytes(max(1, ((bits or value.bit_length()) + 7) // 8), "big"))


def public_jwk(key: PublicKey) -> dict:
    """The public key's JWK members (kty, n, e / crv, x, y), no kid or alg: the members and
    their order that PyJWT's ``to_jwk`` gives (held against it by the unit tests)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "key_ops": ["verify"], "n": _b64url_uint(numbers.n),
                "e": _b64url_uint(numbers.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _JWK_CURVES:
            raise KeyLoadError("EC keys on the curve %s have no JWK: use P-256, P-384 or P-521"
                               % key.curve.name)
        numbers = key.public_numbers()
        bits = key.curve.key_size
        return {"kty": "EC", "crv": _JWK_CURVES[key.curve.name],
                "x": _b64url_uint(numbers.x, bits), "y": _b64url_uint(numbers.y, bits)}
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"x": _b64url(raw), "kty": "OKP",
            "crv": "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448"}


_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"),
                       "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(key: PublicKey) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url: the default ``kid``."""
    jwk = public_jwk(key)
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class PublicKeyEntry:
    """A verification key with the ``kid`` it answers to (a JWK's own, or its thumbprint)."""

    key: PublicKey
    kid: str


def _entry(key: PublicKey, kid: Optional[str] = None) -> PublicKeyEntry:
    _check_strength(key)
    return PublicKeyEntry(key=key, kid=kid or jwk_thumbprint(key))


# The JWK key types of key pairs, with the members that make the public key; "oct" is a
# shared secret, which never verifies tokens here.
_JWK_PUBLIC_MEMBERS = {"RSA": "n and e (base64url)",
                       "EC": "crv (P-256, P-384 or P-521), x and y (base64url)",
                       "OKP": "crv (Ed25519) and x (base64url)"}


def _load_jwks(raw: bytes) -> list:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: JSON nested deeper than the parser's stack, which is no JWKS either.
        raise KeyLoadError("the public key looks like JSON but does not parse: give a JWK "
                           "or a JWKS ({\"keys\": [...]})") from None
    if isinstance(document, dict) and "keys" in document:
        jwks = document["keys"]
        if not isinstance(jwks, list):
            raise KeyLoadError("the JWKS's \"keys\" member is not a list: give "
                               "{\"keys\": [{...}, ...]}")
    else:
        jwks = [document]
    if not jwks:
        raise KeyLoadError("the JWKS has no keys")
    return [_load_jwk(jwk, number) for number, jwk in enumerate(jwks, 1)]


def _load_jwk(jwk: object, number: int) -> PublicKeyEntry:
    if not isinstance(jwk, dict):
        raise KeyLoadError("JWKS key %d is not a JSON object" % number)
    kty = jwk.get("kty")
    if kty == "oct":
        raise KeyLoadError(
            "JWKS key %d is a symmetric (oct) key: tokens here are verified with the public "
            "key of a key pair (kty RSA, EC or OKP), never a shared secret" % number)
    if not isinstance(kty, str) or kty not in _JWK_PUBLIC_MEMBERS:
        raise KeyLoadError("JWKS key %d has no usable kty: give RSA, EC or OKP" % number)
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise KeyLoadError("JWKS key %d has a kid that is not a text" % number)
    public_only = {name: value for name, value in jwk.items()
                   if name not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
    import jwt  # pylint: disable=import-outside-toplevel  # only JWKs need PyJWT (see the top)

    try:
        key = jwt.PyJWK(public_only).key
    except (jwt.exceptions.PyJWTError, ValueError, TypeError):
        # No text of PyJWT's: its messages may repeat the JWK ("kty is not found: {...}").
        # ValueError covers binascii.Error (bad base64); TypeError an unhashable alg.
        raise KeyLoadError(
            "JWKS key %d is not a valid %s public key: check its members %s, and alg if it "
            "has one" % (number, kty, _JWK_PUBLIC_MEMBERS[kty])) from None
    return _entry(key, kid)


def _load_pem_block(block: bytes, kind: bytes, number: int) -> PublicKey:
    if b"PRIVATE" in kind:
        raise KeyLoadError(
            "public key %d is a private key: give only its public half "
            "(openssl pkey -in key.pem -pubout)" % number)
    try:
        if kind == b"CERTIFICATE":
            from cryptography import x509  # pylint: disable=import-outside-toplevel  # see the top

            return x509.load_pem_x509_certificate(block).public_key()
        return serialization.load_pem_public_key(block)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyLoadError("public key %d could not be parsed (%s)"
                           % (number, _safe_reason(error))) from None


def load_all_public_keys(texts: Iterable[Union[bytes, str]]) -> list:
    """Every verification key in every text of ``texts`` (each as load_public_keys reads it), in order."""
    return [entry for text in texts for entry in load_public_keys(text)]


def load_public_keys(data: Union[bytes, str]) -> list:
    """Every verification key in ``data``, as :class:`PublicKeyEntry` objects, in order."""
    raw = _unwrap_base64(_as_bytes(data).strip())
    if not raw:
        raise KeyLoadError("no public key given")
    if raw.startswith(b"{"):
        return _load_jwks(raw)
    blocks = _PEM_BLOCK.finditer(raw)
    entries = [_entry(_load_pem_block(match.group(0), match.group(1), number))
               for number, match in enumerate(blocks, 1)]
    if not entries:
        for number, match in enumerate(_SSH_PUBLIC_LINE.finditer(raw), 1):
            try:
                entries.append(_entry(serialization.load_ssh_public_key(match.group(0))))
            except (ValueError, UnsupportedAlgorithm) as error:
                raise KeyLoadError("public key %d could not be parsed (%s)"
                                   % (number, _safe_reason(error))) from None
    if not entries:
        raise KeyLoadError("no public key found: give PEM, an OpenSSH public key line, "
                           "a JWK or a JWKS")
    return entries


def public_key_pem(key: PublicKey) -> str:
    """SubjectPublicKeyInfo PEM, the form Okera's JWT_PUBLIC_KEY holds."""
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def generate_private_key(algorithm: str = DEFAULT_ALGORITHM, size: int = MIN_RSA_BITS) -> PrivateKey:
    """A new private key that signs with ``algorithm``: RSA of ``size`` bits for RS*/PS*, the
    algorithm's curve for ES*, Ed25519 for EdDSA."""
    name = normalize_algorithm(algorithm)
    if name.startswith(("RS", "PS")):
        if isinstance(size, bool) or not isinstance(size, int) or size < MIN_RSA_BITS or size > 16384:
            raise KeyLoadError("an RSA key of %s bits cannot be made: give a size from %d to 16384"
                               % (shown(size), MIN_RSA_BITS))
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if name in _EC_CURVE_BY_ALGORITHM:
        return ec.generate_private_key(ec.SECP256R1() if name == "ES256" else
                                       ec.SECP384R1() if name == "ES384" else ec.SECP521R1())
    return ed25519.Ed25519PrivateKey.generate()


def private_key_pem(key: PrivateKey) -> str:
    """Unencrypted PKCS#8 PEM of a private key (for a 0600 file or a Secret)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")
