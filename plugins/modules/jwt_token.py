#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: jwt_token
short_description: Mint a JSON Web Token signed with a private key
version_added: 0.1.0
description:
  - Mints a JWT such as an Okera system token (O(subject=okera_system_user), O(groups) = the
    catalog admins) or a user token, signed with an RSA, EC or Ed25519 private key.
  - Writes it atomically to O(path) and/or returns it when O(return_content=true).
  - Idempotent. A token already at O(path) that verifies with this key and algorithm, carries the
    wanted claims, lives no longer than O(ttl) and has more than O(renew_before) left is kept.
    Times alone (C(iat), C(jti)) never cause a change; O(force=true) always renews.
  - With O(verify_public_key_content) it also verifies the token it returns (new or kept) the way
    M(okera.auth.jwt_token_info) does, and reports RV(valid) and RV(invalid_reason) without failing,
    so that the caller decides what an invalid token means.
author:
  - okera.auth maintainers (@okera)
extends_documentation_fragment:
  - okera.auth.signing_key
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Predicts whether a token would be minted; writes nothing.
  diff_mode:
    support: full
    details: Shows claims, key id, expiry and a SHA-256 of the token; never the token.
  platform:
    platforms: posix
  idempotent:
    description: Running it again with the same options changes nothing.
    support: partial
    details: A kept token is reported unchanged; a renewed one differs in C(iat) and C(exp).
options:
  subject:
    description: The C(sub) claim, e.g. V(okera_system_user) or a user name.
    type: str
    required: true
  issuer:
    description: The C(iss) claim (often the cluster's name).
    type: str
  groups:
    description: The C(groups) claim, a list of group names (Okera's catalog admins for the system token).
    type: list
    elements: str
  audience:
    description: The C(aud) claim; one value is written as a text, several as a list.
    type: list
    elements: str
  ttl:
    description:
      - Lifetime, as seconds or a text such as V(30d), V(24h), V(90m), V(1h30m).
      - Mutually exclusive with O(expires_at); the default applies when neither is given.
    type: str
    default: 24h
  expires_at:
    description:
      - Fixed expiry (C(exp)), as epoch seconds or ISO 8601 (V(2030-01-31T00:00:00Z)).
      - Mutually exclusive with O(ttl).
    type: str
  not_before:
    description: The C(nbf) claim, as epoch seconds or ISO 8601.
    type: str
  claims:
    description:
      - Extra claims. They may not set the reserved ones (C(sub), C(iss), C(aud), C(exp), C(nbf),
        C(iat), C(jti), C(groups)); use the matching option instead.
    type: dict
    default: {}
  jti:
    description: Add a random C(jti) claim (a token id for audit logs).
    type: bool
    default: false
  kid:
    description:
      - The header's C(kid). By default the key's RFC 7638 SHA-256 thumbprint, which verifiers can
        match against a JWKS. An empty text leaves C(kid) out.
    type: str
  path:
    description:
      - File to write the token to, atomically (a temp file in the same directory, then a rename).
      - Its mode defaults to V(0600); O(mode), O(owner) and O(group) set it otherwise.
      - Never the private key file itself (compared by device and inode, so also through a
        symlink or hard link); that is refused, even with O(force=true).
      - An existing file there that is not a JWT is refused and left as it is, as
        M(okera.auth.signing_key_pair) refuses a file that is not a private key; O(force=true)
        replaces it, as C(force) of M(community.crypto.openssl_privatekey) regenerates whatever
        is at its path.
      - Read with a bound (1 MiB); a device or FIFO is refused.
    type: path
  return_content:
    description:
      - Return the token as RV(token). Off by default, so that the token never appears in output.
      - Required when no O(path) is given.
    type: bool
    default: false
  renew_before:
    description:
      - Renew a kept token when it has this much or less left. Seconds or a text such as V(7d).
      - Defaults to a third of O(ttl) (or of the time left until O(expires_at)).
    type: str
  force:
    description:
      - Mint a new token even when the existing one would be kept.
      - Also replaces a file at O(path) that holds no token; never the private key file.
    type: bool
    default: false
  verify_public_key_content:
    description:
      - Verification keys as text (PEM, certificates, OpenSSH public keys, JWK or JWKS; one item
        may hold several PEM keys, as Okera's comma-separated C(JWT_PUBLIC_KEY) does, or base64 of
        them), the forms O(okera.auth.jwt_token_info#module:public_key_content) takes.
      - The token is verified with them, with O(algorithm) alone, and against O(subject),
        O(issuer) and O(audience); the result is in RV(valid) and RV(invalid_reason). An empty
        list verifies nothing, so RV(valid) is false.
      - Keys that cannot be loaded fail the task before any token is written, with a reason that
        never shows the keys. Never logged, since a private key may be given here by mistake.
    type: list
    elements: str
seealso:
  - module: okera.auth.jwt_token_info
"""

EXAMPLES = r"""
- name: Mint the Okera system token, kept while it has more than 10 days left
  okera.auth.jwt_token:
    private_key_path: /etc/okera/jwt/private.pem
    subject: okera_system_user
    issuer: prod-cluster
    groups: [okera_admins]
    ttl: 30d
    renew_before: 10d
    path: /etc/okera/system.token
    mode: "0600"

- name: Mint a user token and use it in the play (not written to disk)
  okera.auth.jwt_token:
    private_key_content: "{{ lookup('ansible.builtin.file', 'private.pem') }}"
    algorithm: rsa512
    subject: janedoe
    ttl: 1h
    return_content: true
  register: user_token
  no_log: true

- name: Mint a new system token and verify it with the cluster's public keys in the same task
  okera.auth.jwt_token:
    private_key_path: /etc/okera/jwt/private.pem
    algorithm: rsa512
    subject: okera_system_user
    groups: [okera_admins]
    ttl: 30d
    return_content: true
    verify_public_key_content:
      - "{{ jwt_public_key }}"
  register: new_token
  no_log: true

- name: Refuse a token the cluster would reject
  ansible.builtin.assert:
    that: new_token.valid
    fail_msg: "the new token does not verify with the cluster's keys ({{ new_token.invalid_reason }})"
"""

RETURN = r"""
path:
  description: Where the token is.
  returned: when O(path) is given
  type: str
token:
  description: The token itself.
  returned: when O(return_content=true)
  type: str
claims:
  description: The token's claims (of the kept token, or of the new one).
  returned: success
  type: dict
  sample: {"sub": "okera_system_user", "iss": "prod", "groups": ["okera_admins"], "iat": 1795420138, "exp": 1798012138}
header:
  description: The token's protected header.
  returned: success
  type: dict
  sample: {"alg": "RS512", "typ": "JWT", "kid": "GuS0yLeLocZT-37bxPCltFa8xITJ_wVQNgnR3s4FSV4"}
kid:
  description: The key id in the header (empty when none).
  returned: success
  type: str
expires_at:
  description: Expiry, ISO 8601 UTC.
  returned: success
  type: str
  sample: "2026-12-23T07:50:00Z"
expires_in:
  description: Seconds until expiry.
  returned: success
  type: int
reason:
  description: Why a new token was (or in check mode would be) minted; null when kept.
  returned: success
  type: str
  sample: "the existing token expires in 86000s, within renew_before (864000s)"
valid:
  description:
    - Whether the token verifies with O(verify_public_key_content), as RV(okera.auth.jwt_token_info#module:valid).
  returned: when O(verify_public_key_content) is given
  type: bool
invalid_reason:
  description:
    - Why the token does not verify (the wording of RV(okera.auth.jwt_token_info#module:reason)); null when RV(valid) is true.
    - Not called RV(reason), which says why a token was minted.
  returned: when O(verify_public_key_content) is given
  type: str
  sample: "the signature does not verify with any of the 1 given key(s)"
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError, TokenFormatError, shown_path
from ansible_collections.okera.auth.plugins.module_utils.files import read_bounded, refuse_replacing_inputs, write_file_atomic
from ansible_collections.okera.auth.plugins.module_utils.keys import (
    CRYPTO_LIBS, CRYPTO_LIBS_IMPORT_ERROR, HAS_CRYPTO_LIBS, load_private_key, load_all_public_keys,
)
from ansible_collections.okera.auth.plugins.module_utils.tokens import (
    Signer, TokenSpec, decode_unverified, expiry_facts, mint, parse_duration, parse_time,
    renewal_reason, token_summary, verify,
)


def _read_existing(path, force):
    """The token stored at path, or None when there is none (or force replaces a file that holds
    no token). A file that is not a token is refused without force, as signing_key_pair refuses
    a file that is not a private key: it may be anything a mistyped path leads to."""
    if not path or not os.path.lexists(path):
        return None
    text = read_bounded(path, "token").decode("ascii", "replace").strip()
    try:
        decode_unverified(text)
    except TokenFormatError:
        if force:
            return None
        raise OkeraAuthError("path %s holds something that is not a token (%d bytes): give another path, "
                             "or force: true to replace it" % (shown_path(path), len(text))) from None
    return text


def _token_spec(params, now):
    expires_at = parse_time(params["expires_at"]) if params["expires_at"] else None
    audience = params["audience"]
    return TokenSpec(
        subject=params["subject"],
        issuer=params["issuer"],
        audience=audience[0] if audience and len(audience) == 1 else audience,
        groups=params["groups"],
        ttl=parse_duration(params["ttl"]) if expires_at is None else expires_at - now,
        expires_at=expires_at,
        not_before=parse_time(params["not_before"]) if params["not_before"] else None,
        claims=params["claims"],
        jti=params["jti"],
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            private_key_path=dict(type="path"),
            private_key_content=dict(type="str", no_log=True),
            private_key_passphrase=dict(type="str", no_log=True),
            algorithm=dict(type="str", default="RS512"),
            subject=dict(type="str", required=True),
            issuer=dict(type="str"),
            groups=dict(type="list", elements="str"),
            audience=dict(type="list", elements="str"),
            ttl=dict(type="str", default="24h"),
            expires_at=dict(type="str"),
            not_before=dict(type="str"),
            claims=dict(type="dict", default={}),
            jti=dict(type="bool", default=False),
            kid=dict(type="str"),
            path=dict(type="path"),
            return_content=dict(type="bool", default=False),
            renew_before=dict(type="str", no_log=False),
            force=dict(type="bool", default=False),
            # no_log: a private key may be given here by mistake.
            verify_public_key_content=dict(type="list", elements="str", no_log=True),
        ),
        mutually_exclusive=[("private_key_path", "private_key_content"), ("ttl", "expires_at")],
        required_one_of=[("private_key_path", "private_key_content"), ("path", "return_content")],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if not HAS_CRYPTO_LIBS:
        module.fail_json(msg=missing_required_lib(CRYPTO_LIBS), exception=CRYPTO_LIBS_IMPORT_ERROR)
    params = module.params
    path = params["path"]
    if not path and not params["return_content"]:
        module.fail_json(msg="give path, or set return_content: true, or the token is lost")
    now = int(time.time())
    verdict = None
    try:
        # Loaded first: keys that cannot be loaded fail the task before a token is written.
        verify_keys = load_all_public_keys(params["verify_public_key_content"] or [])
        key_data = (read_bounded(params["private_key_path"], "private key")
                    if params["private_key_path"] else params["private_key_content"])
        signer = Signer(load_private_key(key_data, params["private_key_passphrase"]),
                        params["algorithm"], params["kid"])
        spec = _token_spec(params, now)
        renew_before = (parse_duration(params["renew_before"]) if params["renew_before"]
                        else max(spec.ttl // 3, 1))
        if path:
            refuse_replacing_inputs(path, {"private_key_path": params["private_key_path"]})
        existing = _read_existing(path, params["force"])
        reason = ("force is set" if params["force"]
                  else renewal_reason(existing, signer, spec, renew_before, now))
        if reason is None:
            token = existing
            decoded = decode_unverified(existing)
            header, claims = decoded.header, decoded.claims
        else:
            minted = mint(signer, spec, now)
            token, header, claims = minted.token, minted.header, minted.claims
            if path and not module.check_mode:
                write_file_atomic(path, (token + "\n").encode("ascii"), mode=0o600)
        if params["verify_public_key_content"] is not None:
            verdict = verify(token, verify_keys, [params["algorithm"]], issuer=spec.issuer,
                             audience=params["audience"], subject=spec.subject)
    except OkeraAuthError as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg="cannot read %s: %s" % (shown_path(path), error.strerror))

    result = dict(changed=reason is not None, claims=claims, header=header,
                  kid=header.get("kid", ""), reason=reason)
    if verdict is not None:
        result.update(valid=verdict.valid, invalid_reason=verdict.reason)
    result.update((name, value) for name, value in expiry_facts(claims, now).items()
                  if name != "expired")
    if path:
        result["path"] = path
        if params["mode"] is None:
            params["mode"] = "0600"
        file_args = module.load_file_common_arguments(params)
        if os.path.exists(path):
            result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    if params["return_content"]:
        result["token"] = token
    if module._diff:
        result["diff"] = dict(before=token_summary(existing) if existing else {},
                              after=token_summary(token))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
