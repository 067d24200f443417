"""Key loading and algorithm names: every form admins hold, every way it can be wrong."""
from __future__ import annotations

import base64
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from okera_auth.module_utils import keys
from okera_auth.module_utils.errors import AlgorithmError, InputFileError, KeyLoadError


def _ssh_keygen(tmp_path, name, *args):
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-f", str(path), *args], check=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
def ssh_keys(tmp_path_factory):
    """Keys written by the tools admins use, once per module (RSA generation is slow)."""
    directory = tmp_path_factory.mktemp("sshkeys")
    made = {
        "pkcs1_pem": _ssh_keygen(directory, "pem", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""),
        "openssh": _ssh_keygen(directory, "openssh", "-t", "rsa", "-b", "2048", "-N", ""),
        "openssh_encrypted": _ssh_keygen(directory, "openssh_enc", "-t", "rsa", "-b", "2048",
                                         "-N", "s3cret-pass"),
        "ed25519": _ssh_keygen(directory, "ed", "-t", "ed25519", "-N", ""),
        "openssh_public": (directory / "openssh.pub").read_bytes(),
    }
    subprocess.run(["openssl", "genrsa", "-traditional", "-aes128", "-passout", "pass:pw1",
                    "-out", str(directory / "enc1.pem"), "2048"], check=True, capture_output=True)
    made["pkcs1_encrypted"] = (directory / "enc1.pem").read_bytes()
    return made


@pytest.mark.parametrize("form", ["pkcs1_pem", "openssh", "ed25519"])
def test_unencrypted_forms_load(ssh_keys, form):
    key = keys.load_private_key(ssh_keys[form])
    assert keys.describe_key(key) in ("RSA 2048", "Ed25519")


def test_pkcs8_pem_loads(rsa_key_pem, rsa_private_key):
    key = keys.load_private_key(rsa_key_pem)
    assert key.private_numbers() == rsa_private_key.private_numbers()


def test_base64_of_pem_loads_as_kubernetes_secrets_hold_it(rsa_key_pem, rsa_private_key):
    wrapped = base64.b64encode(rsa_key_pem).decode()
    assert keys.load_private_key(wrapped).private_numbers() == rsa_private_key.private_numbers()


def test_encrypted_pkcs8_needs_and_takes_its_passphrase(rsa_private_key):
    encrypted = rsa_private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"open sesame"))
    with pytest.raises(KeyLoadError, match="encrypted: give its passphrase"):
        keys.load_private_key(encrypted)
    with pytest.raises(KeyLoadError, match="check the passphrase"):
        keys.load_private_key(encrypted, "wrong")
    assert keys.load_private_key(encrypted, "open sesame").key_size == 2048


def test_encrypted_pkcs1_and_openssh_load_with_passphrase(ssh_keys):
    assert keys.load_private_key(ssh_keys["pkcs1_encrypted"], "pw1").key_size == 2048
    assert keys.load_private_key(ssh_keys["openssh_encrypted"], "s3cret-pass").key_size == 2048
    with pytest.raises(KeyLoadError, match="check the passphrase"):
        keys.load_private_key(ssh_keys["openssh_encrypted"], "nope")


def test_passphrase_for_unencrypted_key_is_harmless(rsa_key_pem):
    assert keys.load_private_key(rsa_key_pem, "unused").key_size == 2048


def test_weak_rsa_key_is_refused():
    weak = rsa.generate_private_key(65537, 1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(KeyLoadError, match="1024 bits; at least 2048"):
        keys.load_private_key(weak)


def test_dsa_key_is_refused():
    pem = dsa.generate_private_key(2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(KeyLoadError, match="cannot sign JWTs"):
        keys.load_private_key(pem)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello world", "not PEM, OpenSSH"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "could not be parsed"),
])
def test_garbage_private_key_is_a_clear_error(data, message):
    with pytest.raises(KeyLoadError, match=message):
        keys.load_private_key(data)


def test_public_key_given_as_private_is_named(rsa_public_pem):
    with pytest.raises(KeyLoadError, match="holds something else"):
        keys.load_private_key(rsa_public_pem)


def test_truncated_key_error_carries_no_key_material(rsa_key_pem):
    truncated = rsa_key_pem[: len(rsa_key_pem) // 2] + b"\n-----END PRIVATE KEY-----\n"
    with pytest.raises(KeyLoadError) as caught:
        keys.load_private_key(truncated)
    body = b"".join(rsa_key_pem.splitlines()[1:4]).decode()
    assert body[:20] not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_key_file_is_named(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        keys.load_private_key_file(str(tmp_path / "absent.pem"))
    with pytest.raises(InputFileError, match="is a directory"):
        keys.load_private_key_file(str(tmp_path))


@pytest.mark.parametrize("spelling, name", [
    ("rsa512", "RS512"), ("RSA512", "RS512"), ("rsa256", "RS256"), ("RS384", "RS384"),
    ("rs512", "RS512"), ("ps256", "PS256"), ("ES512", "ES512"), ("eddsa", "EdDSA"),
    (" RS256 ", "RS256"),
])
def test_okera_and_jwa_spellings_normalize(spelling, name):
    assert keys.normalize_algorithm(spelling) == name


@pytest.mark.parametrize("name, message", [
    ("none", "refused"), ("HS256", "refused"), ("RSA1024", "unknown"), ("", "unknown"),
])
def test_unusable_algorithms_are_refused(name, message):
    with pytest.raises(AlgorithmError, match=message):
        keys.normalize_algorithm(name)


def test_key_must_fit_algorithm(rsa_private_key, ec_p256_private_key, ed25519_private_key):
    keys.check_key_fits("PS512", rsa_private_key)
    keys.check_key_fits("ES256", ec_p256_private_key)
    keys.check_key_fits("EdDSA", ed25519_private_key)
    with pytest.raises(AlgorithmError, match="ES256 needs an EC P-256 key, but the key is RSA 2048"):
        keys.check_key_fits("ES256", rsa_private_key)
    with pytest.raises(AlgorithmError, match="ES384 needs an EC P-384 key, but the key is EC P-256"):
        keys.check_key_fits("ES384", ec_p256_private_key)
    with pytest.raises(AlgorithmError, match="RS512 needs an RSA key"):
        keys.check_key_fits("RS512", ed25519_private_key)


def test_thumbprint_matches_rfc7638_example():
    # RFC 7638 section 3.1: the example RSA key and its thumbprint.
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
         "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
         "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI"
         "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
    jwk = json.dumps({"kty": "RSA", "n": n, "e": "AQAB"})
    entry = keys.load_public_keys(jwk)[0]
    assert entry.kid == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_public_keys_in_every_form(rsa_private_key, rsa_public_pem, ssh_keys, ec_p256_private_key):
    kid = keys.jwk_thumbprint(rsa_private_key.public_key())
    pkcs1 = rsa_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    jwks = json.dumps({"keys": [dict(keys.public_jwk(rsa_private_key.public_key()), kid="k1")]})
    for form in (rsa_public_pem, pkcs1, base64.b64encode(rsa_public_pem)):
        assert [entry.kid for entry in keys.load_public_keys(form)] == [kid]
    assert [entry.kid for entry in keys.load_public_keys(jwks)] == ["k1"]
    assert keys.describe_key(keys.load_public_keys(ssh_keys["openssh_public"])[0].key) == "RSA 2048"
    ec_pem = keys.public_key_pem(ec_p256_private_key.public_key())
    both = rsa_public_pem.decode() + "," + ec_pem  # Okera's comma-separated JWT_PUBLIC_KEY
    assert [keys.describe_key(entry.key) for entry in keys.load_public_keys(both)] == ["RSA 2048", "EC P-256"]


def test_private_key_where_public_expected_is_refused(rsa_key_pem):
    with pytest.raises(KeyLoadError, match="is a private key: give only its public half"):
        keys.load_public_keys(rsa_key_pem)


def test_jwks_private_members_are_dropped(rsa_private_key):
    private_jwk = json.loads(__import__("jwt").algorithms.RSAAlgorithm.to_jwk(rsa_private_key))
    entry = keys.load_public_keys(json.dumps(private_jwk))[0]
    assert isinstance(entry.key, rsa.RSAPublicKey)


@pytest.mark.parametrize("data, message", [
    ("", "no public key given"), ("{not json", "does not parse"), ('{"keys": []}', "no keys"),
    ("just words", "no public key found"),
])
def test_bad_public_keys_are_clear_errors(data, message):
    with pytest.raises(KeyLoadError, match=message):
        keys.load_public_keys(data)


def test_ec_public_key_round_trips_through_pem(ec_p256_private_key):
    pem = keys.public_key_pem(ec_p256_private_key.public_key())
    loaded = keys.load_public_keys(pem)[0].key
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert loaded.public_numbers() == ec_p256_private_key.public_key().public_numbers()
