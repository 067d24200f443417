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
      - JWA name of the signing algorithm, or Okera's spelling of it (V(rsa512), V(RSA256)).
      - The key must fit it (RSA for RS*/PS*, the matching EC curve for ES*, Ed25519/Ed448 for EdDSA).
    type: str
    default: RS512
    choices: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA,
              rsa256, rsa384, rsa512, RSA256, RSA384, RSA512]
requirements:
  - PyJWT >= 2.10
  - cryptography >= 41
  - bcrypt (only for passphrase-protected OpenSSH keys)
"""
