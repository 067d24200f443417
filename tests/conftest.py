"""Shared by every test: keys generated once per session (RSA generation is slow), and this
checkout importable as ansible_collections.okera.auth for module and filter tests."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

REPO_ROOT = Path(__file__).resolve().parent.parent


def _pem_pkcs8(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_key_pem(rsa_private_key) -> bytes:
    """PKCS#8 PEM of rsa_private_key."""
    return _pem_pkcs8(rsa_private_key)


@pytest.fixture(scope="session")
def rsa_public_pem(rsa_private_key) -> bytes:
    return rsa_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="session")
def ec_p256_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ed25519_private_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory, rsa_key_pem, rsa_public_pem) -> Path:
    """A directory with private.pem (0600) and public.pem of rsa_private_key."""
    directory = tmp_path_factory.mktemp("keys")
    private = directory / "private.pem"
    private.write_bytes(rsa_key_pem)
    os.chmod(private, 0o600)
    (directory / "public.pem").write_bytes(rsa_public_pem)
    return directory


def openssl_verifies(token: str, public_pem: bytes, algorithm: str, workdir: Path) -> bool:
    """Verify a compact JWS with the openssl command line: a verifier independent of PyJWT."""
    import base64
    import subprocess

    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    header_payload, signature_b64 = token.strip().rsplit(".", 1)
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    (workdir / "input").write_bytes(header_payload.encode("ascii"))
    (workdir / "pub.pem").write_bytes(public_pem)
    if algorithm.startswith("ES"):  # JWS carries r||s; openssl wants DER
        half = len(signature) // 2
        signature = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                         int.from_bytes(signature[half:], "big"))
    (workdir / "sig").write_bytes(signature)
    if algorithm == "EdDSA":
        command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin",
                   "-in", "input", "-sigfile", "sig"]
    else:
        command = ["openssl", "dgst", "-sha" + algorithm[2:], "-verify", "pub.pem",
                   "-signature", "sig"]
        if algorithm.startswith("PS"):
            command[-4:-4] = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
        command.append("input")
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    # dgst prints "Verified OK", pkeyutl "Signature Verified Successfully".
    return done.returncode == 0 and ("Verified OK" in done.stdout or "Successfully" in done.stdout)


@pytest.fixture(name="openssl_verifies")
def openssl_verifies_fixture(tmp_path):
    """openssl_verifies(token, public_pem, algorithm) -> bool, working in a temp directory."""
    return lambda token, public_pem, algorithm: openssl_verifies(token, public_pem, algorithm, tmp_path)


def _collection_root(tmp_path_factory) -> str:
    root = tmp_path_factory.getbasetemp() / "collections"
    namespace = root / "ansible_collections" / "okera"
    if not (namespace / "auth").exists():
        namespace.mkdir(parents=True, exist_ok=True)
        (namespace / "auth").symlink_to(REPO_ROOT, target_is_directory=True)
    return str(root)


@pytest.fixture(scope="session", autouse=True)
def collection_on_path(tmp_path_factory):
    root = _collection_root(tmp_path_factory)
    if root not in sys.path:
        sys.path.insert(0, root)
    yield


@pytest.fixture
def run_module(capsys):
    """run_module(module, args, check_mode=False, diff=False) -> (result dict, failed bool)."""
    from ansible.module_utils.testing import patch_module_args

    def run(module, args, check_mode=False, diff=False):
        arguments = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(arguments), pytest.raises(SystemExit) as exited:
            module.main()
        result = json.loads(capsys.readouterr().out)
        return result, exited.value.code != 0 or bool(result.get("failed"))

    return run


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's server (a real local AWS API) on a free port of 127.0.0.1, for the whole session."""
    from moto_server import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto") / "server.log")
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server):
    """moto_server, emptied before the test: no bucket or secret from another test."""
    moto_server.reset()
    return moto_server
