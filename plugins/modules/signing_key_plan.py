#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: signing_key_plan
short_description: Decide the next stage of an Okera cluster's signing-key rotation
version_added: 0.2.0
description:
  - "The decision of the role C(okera.auth.signing_key), made from data already read: the cluster's
    C(JWT_PUBLIC_KEY), the rotation's annotation on the configuration Secret, and the private keys
    of the key store (current, pending, previous)."
  - "RV(action) is one of: C(generate) (no rotation under way and no pending key: make one);
    C(publish) (add the pending key's public half to C(JWT_PUBLIC_KEY), keeping the old, restart,
    check); C(switch) (the new key is listed everywhere: re-mint the system token with it and make
    it the store's current key); C(wait) (switched, but the grace period O(grace_period) after the
    switch is not over: tokens signed with the old key may still be in use); C(retire) (remove the
    old public key, restart, check)."
  - A stage that was started but not finished (C(publishing), C(switching), C(retiring)) is done
    again. A store or a key list that disagrees with the annotation fails with one line.
  - Keys are named by RFC 7638 thumbprints. Public keys are returned (they are public); private
    keys never are.
author:
  - okera.auth maintainers (@okera)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads nothing and changes nothing; it only decides.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  public_keys:
    description: The cluster's C(JWT_PUBLIC_KEY) text (Okera's comma-separated PEM list).
    type: str
    required: true
  marker:
    description: The value of the annotation C(okera.auth/signing-key-rotation) on the configuration Secret, if any.
    type: str
  current_key:
    description: The store's current private key (the one the cluster's tokens are signed with); a store without one fails.
    type: str
  pending_key:
    description: The store's pending private key (made for this rotation, not yet signing).
    type: str
  previous_key:
    description: The store's previous private key (the old one, kept after the switch until it is retired).
    type: str
  grace_period:
    description:
      - "How long after the switch the old public key stays listed: at least the longest lifetime of a
        token signed with the old key (the auth server's C(--ttl), by default 24h)."
    type: str
    default: 24h
  now:
    description: The time to judge the grace period at (epoch seconds or ISO 8601); the clock by default.
    type: str
  host:
    description: Who runs the rotation, recorded in the annotation.
    type: str
    default: ''
seealso:
  - module: okera.auth.signing_key_pair
"""

EXAMPLES = r"""
- name: Decide what this run does
  okera.auth.signing_key_plan:
    public_keys: "{{ config.data.JWT_PUBLIC_KEY }}"
    marker: "{{ config.annotations['okera.auth/signing-key-rotation'] | default(omit) }}"
    current_key: "{{ lookup('ansible.builtin.file', '/secure/okera-jwt.pem') }}"
    grace_period: 24h
  register: plan
  no_log: true   # its arguments hold private keys; its result holds none
"""

RETURN = r"""
stage:
  description: Where the rotation stands (C(idle), C(publishing), C(published), C(switching), C(switched), C(retiring)).
  returned: success
  type: str
action:
  description: What this run does (C(generate), C(publish), C(switch), C(wait), C(retire)).
  returned: success
  type: str
old:
  description: Fingerprint of the key being replaced.
  returned: success
  type: str
new:
  description: Fingerprint of the replacing key (null before it is made).
  returned: success
  type: str
cluster_keys:
  description: Fingerprints of the keys C(JWT_PUBLIC_KEY) lists now.
  returned: success
  type: list
  elements: str
publish_keys:
  description: C(JWT_PUBLIC_KEY) with the new key added (action C(publish)).
  returned: success
  type: str
retire_keys:
  description: C(JWT_PUBLIC_KEY) without the old key (action C(retire)).
  returned: success
  type: str
rollback_keys:
  description: C(JWT_PUBLIC_KEY) to put back when the stage fails (C(publish), C(retire)).
  returned: success
  type: str
marker:
  description: The annotation's record (stages, fingerprints, public keys, times), to be written with the next stage.
  returned: success
  type: dict
switched_at:
  description: When the signers took the new key (ISO 8601).
  returned: success
  type: str
retire_due:
  description: When the old key may be removed (ISO 8601).
  returned: success
  type: str
retire_in:
  description: Seconds until then (0 when due).
  returned: success
  type: int
promote:
  description: Whether the store's current key must still become the new one (action C(switch)).
  returned: success
  type: bool
summary:
  description: One line for the operator.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError
from ansible_collections.okera.auth.plugins.module_utils.keys import (
    CRYPTO_LIBS, CRYPTO_LIBS_IMPORT_ERROR, HAS_CRYPTO_LIBS,
)
from ansible_collections.okera.auth.plugins.module_utils.signing_key import holds_private_key, plan_rotation


def main():
    module = AnsibleModule(
        argument_spec=dict(
            # Not no_log: the plan returns these PEMs again (the cluster's next JWT_PUBLIC_KEY), and
            # Ansible would mask them there. A private key given here by mistake is hidden below.
            public_keys=dict(type="str", required=True, no_log=False),
            marker=dict(type="str"),
            current_key=dict(type="str", no_log=True),
            pending_key=dict(type="str", no_log=True),
            previous_key=dict(type="str", no_log=True),
            grace_period=dict(type="str", default="24h"),
            now=dict(type="str"),
            host=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTO_LIBS:
        module.fail_json(msg=missing_required_lib(CRYPTO_LIBS), exception=CRYPTO_LIBS_IMPORT_ERROR)
    params = module.params
    if holds_private_key(params["public_keys"]):
        module.no_log_values.add(params["public_keys"])
        module.fail_json(msg="public_keys holds a private key: give only the cluster's public key(s), its JWT_PUBLIC_KEY")
    try:
        plan = plan_rotation(params["public_keys"], params["marker"], params["current_key"], params["pending_key"],
                             params["previous_key"], params["grace_period"], params["now"], params["host"])
    except OkeraAuthError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **plan.as_dict())


if __name__ == "__main__":
    main()
