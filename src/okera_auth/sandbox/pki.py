# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys and certificates the sandbox makes: the signing key of the system token, and a
self-signed certificate authority with a server certificate for 127.0.0.1 and localhost."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from typing import Tuple

from okera_auth.module_utils.files import write_file_atomic
from okera_auth.module_utils.keys import HAS_CRYPTO_LIBS
from .errors import SandboxError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:
    pass  # HAS_CRYPTO_LIBS says so; require_cryptography() turns it into an error

VALIDITY_DAYS = 365


def require_cryptography() -> None:
    if not HAS_CRYPTO_LIBS:
        raise SandboxError("the sandbox needs the Python packages PyJWT and cryptography: "
                           "pip install PyJWT cryptography")


def generate_signing_key() -> Tuple["rsa.RSAPrivateKey", bytes]:
    """An RSA-2048 key for the system token, and its PKCS#8 PEM."""
    require_cryptography()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())


def _name(common_name: str) -> "x509.Name":
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "okera-auth-sandbox")])


def generate_certificates() -> Tuple[bytes, bytes, bytes]:
    """(CA certificate PEM, server certificate PEM, server key PEM); the CA key is not kept."""
    require_cryptography()
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALIDITY_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_public = ca_key.public_key()
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("okera-auth-sandbox CA"))
        .issuer_name(_name("okera-auth-sandbox CA")).public_key(ca_public)
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_public), critical=False)
        .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder().subject_name(_name("okera-auth-sandbox"))
        .issuer_name(ca_cert.subject).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)
        .sign(ca_key, hashes.SHA256()))
    key_pem = server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    return (ca_cert.public_bytes(serialization.Encoding.PEM),
            server_cert.public_bytes(serialization.Encoding.PEM), key_pem)


def write_certificates(ca_path: str, cert_path: str, key_path: str) -> None:
    ca_pem, cert_pem, key_pem = generate_certificates()
    write_file_atomic(ca_path, ca_pem, mode=0o644)
    write_file_atomic(cert_path, cert_pem, mode=0o644)
    write_file_atomic(key_path, key_pem, mode=0o600)


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as error:
        raise SandboxError("cannot load the server certificate %s or its key (%s): delete ca.crt, "
                           "server.crt and server.key from the state directory to have new ones made"
                           % (cert_path, getattr(error, "reason", None) or error)) from None
    return context
