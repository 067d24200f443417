# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  private_key_path:
    description:
      - Path of the private key that signs, on the host the module runs on.
      - Accepted forms are PKCS#1 PEM (C(ssh-keygen -m PEM)), PKCS#8 PEM, encrypted PEM, the
        OpenSSH format written by a plain C(ssh-keygen), and base64 of any of these (the form
        a Kubernetes Secret holds).
      - RSA keys under 2048 bits are refused.
      - Exactly one of O(private_key_path) and O(private_key_content) is required.
    type: path
  private_key_content:
    description:
      - The private key itself, in any form O(private_key_path) accepts.
    type: str
  private_key_passphrase:
    description:
      - Passphrase of an encrypted private key.
    type: str
  algorithm:
    description:
      - JWA name of the signing algorithm (V(RS256), V(RS384), V(RS512), V(PS256), V(PS384),
        V(PS512), V(ES256), V(ES384), V(ES512), V(EdDSA)), in any case, or Okera's spelling of
        it (V(rsa512), V(RSA256)). C(none) and HMAC algorithms are refused.
      - The key must fit it (RSA for RS*/PS*, the matching EC curve for ES*, Ed25519/Ed448 for EdDSA).
    type: str
    default: RS512
requirements:
  - PyJWT >= 2.10
  - cryptography >= 41
  - bcrypt (only for passphrase-protected OpenSSH keys)
"""
