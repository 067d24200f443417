#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: signing_key_pair
short_description: Make a new key pair for signing Okera's JWTs, or keep the one already made
version_added: 0.2.0
description:
  - Makes a private key that signs with O(algorithm) (RSA of O(size) bits for C(RS*) and C(PS*),
    the algorithm's curve for C(ES*), Ed25519 for C(EdDSA)) and returns its public half and
    fingerprint.
  - With O(path), the key is written there atomically (a temp file with mode C(0600) in the same
    directory, then a rename). An existing file that holds a usable private key is kept
    (C(changed=false)), so a stopped run that is run again does not make another key.
  - Without O(path), the key is returned as RV(private_key) (O(return_content=true)), e.g. to put it
    in a Kubernetes Secret; protect that task with C(no_log).
  - Key text is never in a message or a diff; the diff shows fingerprints only.
author:
  - okera.auth maintainers (@okera)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Predicts a new key without writing one.
  diff_mode:
    support: full
    details: The fingerprint before and after, never the key.
  platform:
    platforms: posix
options:
  algorithm:
    description: The JWA algorithm the key is to sign with; Okera's spellings (V(rsa512)) are accepted.
    type: str
    default: RS512
  size:
    description:
      - Bits of an RSA key (at least 2048), a whole number.
      - Declared C(raw) so that a value that is no number is refused by the module, whose
        message never quotes a key given here by mistake.
    type: raw
    default: 2048
  path:
    description: File to keep the private key in (mode C(0600)); an existing key there is kept.
    type: path
  return_content:
    description: Return the private key as RV(private_key). Required when no O(path) is given.
    type: bool
    default: false
seealso:
  - module: okera.auth.signing_key_plan
"""

EXAMPLES = r"""
- name: Make the next signing key beside the current one, unless a stopped run made it already
  okera.auth.signing_key_pair:
    algorithm: RS512
    size: 3072
    path: /secure/okera-jwt.pem.next
  register: next_key

- name: Make a key to store in a Kubernetes Secret
  okera.auth.signing_key_pair:
    return_content: true
  register: new_key
  no_log: true
"""

RETURN = r"""
fingerprint:
  description: RFC 7638 SHA-256 thumbprint of the public key (the C(kid) tokens signed with it carry).
  returned: success
  type: str
public_key:
  description: The public key as SubjectPublicKeyInfo PEM (what Okera's C(JWT_PUBLIC_KEY) lists).
  returned: success
  type: str
key_type:
  description: The key's type and size, such as C(RSA 2048).
  returned: success
  type: str
private_key:
  description: The private key, PKCS#8 PEM, unencrypted.
  returned: when O(return_content=true)
  type: str
path:
  description: Where the key is kept.
  returned: when O(path) is given
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError, shown_path, whole_number
from ansible_collections.okera.auth.plugins.module_utils.files import read_bounded, write_file_atomic
from ansible_collections.okera.auth.plugins.module_utils.keys import (
    CRYPTO_LIBS, CRYPTO_LIBS_IMPORT_ERROR, HAS_CRYPTO_LIBS, check_key_fits, describe_key, generate_private_key,
    load_private_key, private_key_pem, public_key_pem,
)
from ansible_collections.okera.auth.plugins.module_utils.signing_key import fingerprint


def main():
    module = AnsibleModule(
        argument_spec=dict(
            algorithm=dict(type="str", default="RS512"),
            size=dict(type="raw", default=2048),
            path=dict(type="path"),
            return_content=dict(type="bool", default=False),
        ),
        required_one_of=[("path", "return_content")],
        supports_check_mode=True,
    )
    if not HAS_CRYPTO_LIBS:
        module.fail_json(msg=missing_required_lib(CRYPTO_LIBS), exception=CRYPTO_LIBS_IMPORT_ERROR)
    params = module.params
    path = params["path"]
    before = None
    try:
        if path and os.path.lexists(path):
            key = load_private_key(read_bounded(path, "private key"))
            check_key_fits(params["algorithm"], key)
            before = fingerprint(key)
        else:
            key = generate_private_key(params["algorithm"], whole_number(params["size"], "size"))
            if path and not module.check_mode:
                write_file_atomic(path, private_key_pem(key).encode("ascii"), mode=0o600)
    except OkeraAuthError as error:
        module.fail_json(msg="%s%s" % ("%s: " % shown_path(path) if path else "", error))
    result = dict(changed=before is None, fingerprint=fingerprint(key), public_key=public_key_pem(key.public_key()),
                  key_type=describe_key(key))
    if path:
        result["path"] = path
    if params["return_content"]:
        result["private_key"] = private_key_pem(key)
    if module._diff:
        result["diff"] = dict(before={"fingerprint": before} if before else {}, after={"fingerprint": result["fingerprint"]})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
