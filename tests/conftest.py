"""Keys shared by every test: generated once per session, since RSA generation is slow."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

REPO_ROOT = Path(__file__).resolve().parent.parent

# The collection's library is the plain package okera_auth (pyproject maps it to
# plugins/module_utils); importing it from the checkout keeps tests on the working tree.
if "okera_auth" not in sys.modules:
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "okera_auth",
        REPO_ROOT / "plugins" / "module_utils" / "__init__.py",
        submodule_search_locations=[str(REPO_ROOT / "plugins" / "module_utils")],
    )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["okera_auth"] = _module
    _spec.loader.exec_module(_module)


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
