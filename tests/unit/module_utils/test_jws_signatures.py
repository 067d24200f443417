"""The signatures and JWKs made with cryptography alone are PyJWT's: the same bytes where the
algorithm is deterministic (RS*, EdDSA, JWKs), tokens that PyJWT verifies where it is not
(PS*, ES*); and the auth server's own RSA key is loaded without OpenSSL's prime tests only
after a signature has proven it."""
from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms

from okera_auth.module_utils import keys, tokens
from okera_auth.module_utils.errors import KeyLoadError

RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
# Claims as a service would ask for them: any text, numbers, lists of group names.
CLAIMS = st.fixed_dictionaries(
    {"sub": st.text(min_size=1, max_size=40), "exp": st.integers(2_000_000_000, 4_000_000_000)},
    optional={"groups": st.lists(st.text(max_size=20), max_size=5),
              "n": st.integers(-2**53, 2**53), "ok": st.booleans()})
FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def ec_keys():
    return {algorithm: ec.generate_private_key(curve) for algorithm, curve in EC_CURVES.items()}


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
@FEW
@given(data=st.binary(max_size=600))
def test_rsa_pkcs1_signature_is_pyjwts_byte_for_byte(rsa_private_key, algorithm, data):
    ours = tokens.Signer(rsa_private_key, algorithm).signature(data)
    assert ours == get_default_algorithms()[algorithm].sign(data, rsa_private_key)


@FEW
@given(data=st.binary(max_size=600))
def test_eddsa_signature_is_pyjwts_byte_for_byte(ed25519_private_key, data):
    ours = tokens.Signer(ed25519_private_key, "EdDSA").signature(data)
    assert ours == get_default_algorithms()["EdDSA"].sign(data, ed25519_private_key)


@pytest.mark.parametrize("algorithm", RSA_ALGORITHMS)
@FEW
@given(claims=CLAIMS)
def test_pyjwt_verifies_every_rsa_token(rsa_private_key, algorithm, claims):
    token = tokens.Signer(rsa_private_key, algorithm).sign(claims)
    assert jwt.decode(token, rsa_private_key.public_key(), algorithms=[algorithm],
                      options={"verify_exp": False}) == claims


@pytest.mark.parametrize("algorithm", sorted(EC_CURVES))
@FEW
@given(claims=CLAIMS)
def test_pyjwt_verifies_every_ec_token(ec_keys, algorithm, claims):
    key = ec_keys[algorithm]
    token = tokens.Signer(key, algorithm).sign(claims)
    assert jwt.decode(token, key.public_key(), algorithms=[algorithm],
                      options={"verify_exp": False}) == claims


@pytest.mark.parametrize("algorithm", ["PS256", "PS384", "PS512"])
def test_pss_salt_is_the_digest_size(rsa_private_key, algorithm):
    """RFC 7518 section 3.5: a verifier that insists on the digest-sized salt accepts it."""
    digest = {"PS256": hashes.SHA256(), "PS384": hashes.SHA384(), "PS512": hashes.SHA512()}[algorithm]
    signature = tokens.Signer(rsa_private_key, algorithm).signature(b"input")
    rsa_private_key.public_key().verify(
        signature, b"input", padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest)


@pytest.mark.parametrize("algorithm, size", [("ES256", 64), ("ES384", 96), ("ES512", 132)])
def test_ecdsa_signature_is_raw_r_and_s(ec_keys, algorithm, size):
    signature = tokens.Signer(ec_keys[algorithm], algorithm).signature(b"input")
    assert len(signature) == size
    assert get_default_algorithms()[algorithm].verify(b"input", ec_keys[algorithm].public_key(), signature)


def test_signing_and_the_auth_server_import_no_pyjwt():
    """What signs (Signer, its kid, the JWK) imports neither PyJWT nor cryptography.x509: the
    auth server starts without them (a third of its start time and memory)."""
    import subprocess
    import sys

    code = ("import sys; from okera_auth.module_utils import keys, tokens; "
            "import okera_auth.authserver.cli; "
            "print(sorted(name for name in sys.modules if name == 'jwt' or name.startswith(('jwt.', 'cryptography.x509'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _jwk_cases():
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048),
            rsa.generate_private_key(public_exponent=3, key_size=2048),
            ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1()),
            ec.generate_private_key(ec.SECP521R1()), ec.generate_private_key(ec.SECP256K1()),
            ed25519.Ed25519PrivateKey.generate(), ed448.Ed448PrivateKey.generate()]


@pytest.mark.parametrize("private_key", _jwk_cases(), ids=keys.describe_key)
def test_public_jwk_is_pyjwts_member_for_member(private_key):
    public_key = private_key.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        expected = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        expected = ECAlgorithm.to_jwk(public_key, as_dict=True)
    else:
        expected = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    ours = keys.public_jwk(public_key)
    assert json.dumps(ours) == json.dumps(expected)  # members, values and their order (the kid's input)


def test_ec_key_on_a_curve_without_jwk_is_a_one_line_error():
    with pytest.raises(KeyLoadError, match="curve secp224r1 have no JWK"):
        keys.public_jwk(ec.generate_private_key(ec.SECP224R1()).public_key())


def _pem(private_key) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def test_own_key_loads_the_same_key(rsa_private_key, rsa_key_pem):
    loaded = keys.load_private_key(rsa_key_pem, own_key=True)
    assert loaded.private_numbers() == rsa_private_key.private_numbers()


def test_own_key_whose_signatures_do_not_verify_is_refused(rsa_private_key):
    """A key whose public exponent does not match its private one: OpenSSL's full check
    refuses it as it always did, and the own-key path by its probe signature."""
    numbers = rsa_private_key.private_numbers()
    damaged = rsa.RSAPrivateNumbers(
        numbers.p, numbers.q, numbers.d, numbers.dmp1, numbers.dmq1, numbers.iqmp,
        rsa.RSAPublicNumbers(3, numbers.public_numbers.n)).private_key(unsafe_skip_rsa_key_validation=True)
    with pytest.raises(KeyLoadError, match="could not be parsed"):
        keys.load_private_key(_pem(damaged))
    with pytest.raises(KeyLoadError, match="damaged: its signatures do not verify"):
        keys.load_private_key(_pem(damaged), own_key=True)
