#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: jwt_token_info
short_description: Decode a JSON Web Token and, given public keys, verify it
version_added: 0.1.0
description:
  - Without keys, decodes a JWT and reports its header, claims and expiry.
  - With O(public_key_path) or O(public_key_content) it also verifies the token and reports
    RV(valid) and, when invalid, RV(reason). The algorithm comes from O(algorithms), never from
    the token's header; C(alg=none), HMAC algorithms, a missing C(exp) and unknown C(crit)
    headers are refused. Every given key is tried (as an Okera cluster tries each key of its
    C(JWT_PUBLIC_KEY) list); a header C(kid) that names one of them narrows the choice.
  - Malformed input (not three parts, bad base64url, bad JSON, more than 64 KiB, JSON nested
    deeper than 32 levels) fails the task with the reason, which never repeats the token or a key.
  - A token whose C(exp), C(nbf) or C(iat) is not a number of seconds (a text such as
    V("9999999999"), a boolean, NaN, 1e300) does not verify, and reports no expiry.
author:
  - okera.auth maintainers (@okera)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: Running it again with the same options changes nothing.
    support: full
options:
  token:
    description: The token. Mutually exclusive with O(path).
    type: str
  path:
    description: File holding the token.
    type: path
  public_key_path:
    description:
      - Files with verification keys (PEM, certificates, OpenSSH public keys, JWK or JWKS).
      - Symmetric (C(kty=oct)) JWKs are refused, as are private keys.
    type: list
    elements: path
    default: []
  public_key_content:
    description:
      - Verification keys as text, in the forms O(public_key_path) takes; one item may hold
        several PEM keys (Okera's comma-separated C(JWT_PUBLIC_KEY)) or base64 of them.
      - Never logged, not even with C(-vvv), since a private key may be given here by mistake;
        such a key is refused without being shown.
    type: list
    elements: str
    default: []
  algorithms:
    description: Algorithms accepted when verifying (JWA names or Okera's V(rsa512)).
    type: list
    elements: str
    default: [RS512]
  leeway:
    description:
      - Seconds of clock skew allowed on C(exp), C(nbf) and C(iat), a whole number.
      - Declared C(raw) so that a value that is no number is refused by the module, whose
        message never quotes a key or token given here by mistake.
    type: raw
    default: 0
  issuer:
    description: Expected C(iss), checked when given.
    type: str
  audience:
    description: Expected C(aud) value(s); the token must name one of them.
    type: list
    elements: str
  subject:
    description: Expected C(sub), checked when given.
    type: str
seealso:
  - module: okera.auth.jwt_token
"""

EXAMPLES = r"""
- name: Decode a token file
  okera.auth.jwt_token_info:
    path: /etc/okera/system.token
  register: info

- name: Verify the system token against the cluster's public keys
  okera.auth.jwt_token_info:
    token: "{{ system_token }}"
    public_key_content:
      - "{{ jwt_public_key }}"
    algorithms: [rsa512]
    subject: okera_system_user
  register: check
  failed_when: not check.valid
"""

RETURN = r"""
header:
  description: The token's protected header.
  returned: success
  type: dict
claims:
  description: The token's claims (not verified unless RV(valid) is true).
  returned: success
  type: dict
expires_at:
  description: Expiry, ISO 8601 UTC; null when the token has no C(exp) or it is not a number of seconds.
  returned: success
  type: str
expires_in:
  description: Seconds until expiry (negative once expired); null when RV(expires_at) is.
  returned: success
  type: int
expired:
  description: Whether C(exp) has passed.
  returned: success
  type: bool
valid:
  description: Whether the signature and claims verify.
  returned: when keys are given
  type: bool
reason:
  description: Why the token is not valid.
  returned: when keys are given and RV(valid) is false
  type: str
verified_kid:
  description: Key id of the key that verified the signature.
  returned: when RV(valid) is true
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError, whole_number
from ansible_collections.okera.auth.plugins.module_utils.files import read_bounded
from ansible_collections.okera.auth.plugins.module_utils.keys import (
    CRYPTO_LIBS, CRYPTO_LIBS_IMPORT_ERROR, HAS_CRYPTO_LIBS, load_all_public_keys,
)
from ansible_collections.okera.auth.plugins.module_utils.tokens import (
    decode_unverified, expiry_facts, verify,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            token=dict(type="str", no_log=True),
            path=dict(type="path"),
            public_key_path=dict(type="list", elements="path", default=[]),
            # no_log: a private key may be given here by mistake.
            public_key_content=dict(type="list", elements="str", default=[], no_log=True),
            algorithms=dict(type="list", elements="str", default=["RS512"]),
            leeway=dict(type="raw", default=0),
            issuer=dict(type="str"),
            audience=dict(type="list", elements="str"),
            subject=dict(type="str"),
        ),
        mutually_exclusive=[("token", "path")],
        required_one_of=[("token", "path")],
        supports_check_mode=True,
    )
    if not HAS_CRYPTO_LIBS:
        module.fail_json(msg=missing_required_lib(CRYPTO_LIBS), exception=CRYPTO_LIBS_IMPORT_ERROR)
    params = module.params
    try:
        leeway = whole_number(params["leeway"], "leeway")
        token = params["token"]
        if params["path"]:
            token = read_bounded(params["path"], "token").decode("ascii", "replace")
        decoded = decode_unverified(token)
        result = dict(changed=False, header=decoded.header, claims=decoded.claims)
        result.update(expiry_facts(decoded.claims))
        key_texts = [read_bounded(path, "public key") for path in params["public_key_path"]]
        key_texts += params["public_key_content"]
        if key_texts:
            keys = load_all_public_keys(key_texts)
            verdict = verify(token, keys, params["algorithms"], leeway=leeway,
                             issuer=params["issuer"], audience=params["audience"],
                             subject=params["subject"])
            result.update(valid=verdict.valid, reason=verdict.reason)
            if verdict.valid:
                result["verified_kid"] = verdict.kid
    except OkeraAuthError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
