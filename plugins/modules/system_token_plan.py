#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: system_token_plan
short_description: Decide which of an Okera cluster's system tokens to rotate, and why
version_added: 0.1.0
description:
  - The decision of the role C(okera.auth.system_token). For each key of O(secret_keys) it decodes
    the token (from O(tokens), or read from the Secret O(secret)), verifies it with the cluster's
    public key(s) and algorithm, and says whether to rotate it and why.
  - With O(secret), O(config_secret) and O(rest_service) it also reads what the decision needs
    from the cluster (with the options of M(okera.auth.k8s_secret_data_info)), in one run instead
    of one task each.
  - "A token is rotated, for the first reason that holds: it is C(missing); C(unreadable) (not a
    JWT, malformed, or a C(sub), C(iss) or C(groups) claim of the wrong type), with the reason;
    it C(does not verify with the cluster key), with the reason (another key, another algorithm,
    expired, an C(exp) that is not a number); C(its groups include none of the catalog admins);
    it C(expires within) O(rotate_before) or has no expiry; or O(force=true) (C(forced)).
    Otherwise it is kept (C(more than 7d left))."
  - The verification keys are O(public_key_content), else the cluster's C(JWT_PUBLIC_KEY) in
    O(config); the algorithm is O(algorithm), else the cluster's C(JWT_ALGORITHM) (when the keys
    come from O(config)), else V(RS512). A C(JWT_PUBLIC_KEY) that names a file path or an
    C(s3://) URI (where Okera reads the key) instead of holding the key fails with one line
    saying so.
  - "The groups of a new token (RV(plan[].new_groups)) are O(groups) when given; else the current
    token's, taken only from a token whose signature verifies with the cluster's key(s) (expired
    or not), else from the first such token of another key; else the catalog admins. A token
    that does not verify lends neither groups nor issuer: whoever could write it into the Secret
    could not sign it."
  - The catalog admins are O(catalog_admins), else Okera's comma-separated C(CATALOG_ADMINS) in
    O(config). A new token must have one of them in its groups, or the cluster refuses it; when it
    would not, RV(refusal) says why (the role then stops before changing anything).
  - Returns no token, except the ones read from O(secret) in RV(current.data) - give the task
    C(no_log=true) when it reads a Secret. Messages name the role's variables, since the role is
    what calls it.
author:
  - okera.auth maintainers (@okera)
extends_documentation_fragment:
  - okera.auth.k8s_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: It only reads; in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: It changes nothing; the same tokens give the same plan until time moves them past O(rotate_before).
    support: full
options:
  tokens:
    description:
      - The token Secret's data, decoded (key to token text), as M(okera.auth.k8s_secret_data_info) returns it
        with C(return_content=true). Keys not in O(secret_keys) are ignored.
      - With O(secret), the tokens read from it are added to these (e.g. O(tokens) holds those read from S3).
    type: dict
    default: {}
  secret:
    description:
      - Read the tokens of O(secret_keys) from this Secret of the cluster, and its annotation
        C(okera.auth/rotation-unfinished) (so O(unfinished_marker) is not used). RV(current) says what it holds.
      - Fails, naming the role's variables, when the Secret does not exist or holds binary data under one of
        O(secret_keys).
    type: dict
    suboptions:
      namespace:
        description: Its namespace.
        type: str
        default: default
      name:
        description: Its name.
        type: str
        required: true
      keys:
        description: The keys of O(secret_keys) it holds; unset, all of them (the others come from O(tokens)).
        type: list
        elements: str
  config_secret:
    description:
      - Read O(config) from this Secret of the cluster (only O(config_public_key_key), O(config_algorithm_key)
        and O(config_catalog_admins_key)) unless O(config) is given. A Secret that does not exist is no O(config).
    type: dict
    suboptions:
      namespace:
        description: Its namespace.
        type: str
        default: default
      name:
        description: Its name.
        type: str
        required: true
  rest_service:
    description:
      - Find Okera's REST API (RV(rest)) when the cluster is to be checked afterwards - when a token of
        O(secret.keys) is to be rotated, or an unfinished rotation finished. It is O(rest_service.url) when given, else the load
        balancer of this Service, as M(okera.auth.okera_rest_check) finds it. Not finding it is reported in
        RV(rest), not a failure.
    type: dict
    suboptions:
      url:
        description: The REST API's base URL; when given, the Service is not read.
        type: str
      namespace:
        description: The Service's namespace.
        type: str
        default: default
      name:
        description: The Service's name.
        type: str
        default: cdas-rest-server
      port:
        description: The Service port's name or number; unset, the first port.
        type: str
      scheme:
        description: The URL's scheme.
        type: str
        choices: [http, https]
        default: http
  private_key_path:
    description:
      - The signing key file the new tokens will be minted with; only checked to be a file (not read), before
        anything is read from the cluster, so that a wrong path stops the run first.
    type: path
  secret_keys:
    description: The Secret keys that hold system tokens, each planned on its own, in this order.
    type: list
    elements: str
    required: true
  public_key_content:
    description:
      - The cluster's verification keys as text (PEM, certificates, OpenSSH public keys, JWK, JWKS);
        one item may hold several PEM keys (Okera's comma-separated C(JWT_PUBLIC_KEY)) or base64 of them.
      - When empty, the key(s) are read from O(config).
    type: list
    elements: str
    default: []
  config:
    description:
      - The data of the cluster's configuration Secret (as from M(okera.auth.k8s_secret_data_info)), used
        when O(public_key_content) is empty (and for the catalog admins unless O(catalog_admins) is given);
        omit it when that Secret does not exist.
      - Only O(config_public_key_key), O(config_algorithm_key) and O(config_catalog_admins_key) are read,
        and all are public. Pass only those, since this option is not hidden from logs.
    type: dict
  config_name:
    description: How messages name the configuration, e.g. V(Secret okera/okera-config).
    type: str
    default: the configuration Secret
  config_public_key_key:
    description: Key of O(config) that holds the public key(s).
    type: str
    default: JWT_PUBLIC_KEY
  config_algorithm_key:
    description: Key of O(config) that holds the algorithm.
    type: str
    default: JWT_ALGORITHM
  config_catalog_admins_key:
    description: Key of O(config) that holds the catalog admin groups, comma-separated.
    type: str
    default: CATALOG_ADMINS
  catalog_admins:
    description:
      - The cluster's catalog admin groups; unset reads them from O(config). An empty list means unknown
        (no check).
    type: list
    elements: str
  groups:
    description: The groups new tokens get; empty keeps the current ones (see above).
    type: list
    elements: str
    default: []
  unfinished_marker:
    description:
      - The value of the token Secret's annotation C(okera.auth/rotation-unfinished), when it has one - left by a
        rotation that wrote the Secret but did not get to restart the workloads and check the cluster. It
        is reported in RV(unfinished) (the role then finishes that rotation).
    type: str
  algorithm:
    description:
      - The algorithm tokens must be signed with (JWA names or Okera's V(rsa512)); never taken from a token.
      - Unset, the cluster's from O(config), else V(RS512).
    type: str
  rotate_before:
    description: Rotate a token that expires within this duration (seconds, or a text such as V(7d), V(36h)).
    type: str
    default: 7d
  force:
    description: Rotate tokens that have enough time left too.
    type: bool
    default: false
notes:
  - Signatures and C(exp) are checked against this host's clock.
seealso:
  - module: okera.auth.jwt_token_info
  - module: okera.auth.k8s_secret_data_info
"""

EXAMPLES = r"""
- name: Read the token(s), the cluster's key(s) and its REST API's address, and decide what to do
  okera.auth.system_token_plan:
    kubeconfig: ~/.kube/okera-prod.yaml
    secret: {namespace: okera, name: secrets}
    secret_keys: [SYSTEM_TOKEN_0]
    config_secret: {namespace: okera, name: okera-config}
    rest_service: {namespace: okera}
    private_key_path: /etc/okera/signing-key.pem
  register: plan
  no_log: true

- name: Or read the token(s) beforehand
  okera.auth.k8s_secret_data_info:
    namespace: okera
    name: secrets
    keys: [SYSTEM_TOKEN_0, SYSTEM_TOKEN_1]
    return_content: true
    fail_on_missing: false
  register: current
  no_log: true

- name: Decide what to do with each of them
  okera.auth.system_token_plan:
    tokens: "{{ current.data }}"
    secret_keys: [SYSTEM_TOKEN_0, SYSTEM_TOKEN_1]
    public_key_content:
      - "{{ lookup('ansible.builtin.file', 'okera-public.pem') }}"
    algorithm: rsa512
    rotate_before: 7d
  register: plan

- name: Show it
  ansible.builtin.debug:
    msg: "{{ plan.plan | map(attribute='summary') | list }}"
"""

RETURN = r"""
plan:
  description: One entry per key of O(secret_keys), in order.
  returned: success
  type: list
  elements: dict
  contains:
    key:
      description: The Secret key.
      type: str
    present:
      description: Whether the Secret has the key.
      type: bool
    subject:
      description: The token's C(sub); null when missing or unreadable.
      type: str
    issuer:
      description: The token's C(iss); null when it has none, or is missing or unreadable.
      type: str
    groups:
      description: The token's C(groups).
      type: list
      elements: str
    expires_at:
      description: Expiry, ISO 8601 UTC; null without a readable C(exp).
      type: str
    issued_at:
      description: Issue time (C(iat)), ISO 8601 UTC; null without a readable one.
      type: str
    expires_in:
      description: Seconds until expiry (negative once expired); null when RV(plan[].expires_at) is.
      type: int
    days_left:
      description: RV(plan[].expires_in) in days, rounded to one decimal.
      type: float
    keep_issuer:
      description: The C(iss) a new token keeps unless given one; for a key without a readable token, the first readable token's.
      type: str
    keep_groups:
      description: The C(groups) a new token keeps unless given some; taken like RV(plan[].keep_issuer).
      type: list
      elements: str
    valid:
      description: Whether the token verifies with the cluster's key(s) and algorithm.
      type: bool
    genuine:
      description: Whether its signature verifies with the cluster's key(s), expiry aside; only a genuine
        token lends its issuer and groups.
      type: bool
    catalog_admin:
      description: Whether its groups include one of the catalog admins; null when they are unknown or the
        token is missing or unreadable.
      type: bool
    new_groups:
      description: The groups a new token for this key gets.
      type: list
      elements: str
    new_groups_from:
      description: Where RV(plan[].new_groups) come from - C(system_token_groups), C(the current token),
        C(the token of SYSTEM_TOKEN_0), C(the catalog admins); null when there are none.
      type: str
    rotate:
      description: Whether to rotate it.
      type: bool
    why:
      description: Why, e.g. C(missing), C(expires within 7d), C(forced), C(more than 7d left), or C(unreadable)
        and C(does not verify with the cluster key) followed by the reason in parentheses.
      type: str
    summary:
      description: One line for the operator.
      type: str
      sample: "SYSTEM_TOKEN_0: sub=okera_system_user iss=prod expires 2026-12-23T07:50:00Z (2.0 days left), expires within 7d: rotate"
catalog_admins:
  description: The cluster's catalog admin groups; null when unknown.
  returned: success
  type: list
  elements: str
catalog_admins_from:
  description: Where they come from, e.g. C(CATALOG_ADMINS of Secret okera/okera-config) or C(system_token_catalog_admins).
  returned: success
  type: str
unfinished:
  description: The unfinished rotation the marker names; null when there is none.
  returned: success
  type: dict
  contains:
    started:
      description: When it started (ISO 8601 UTC).
      type: str
    by:
      description: The inventory host that ran it.
      type: str
    secret_keys:
      description: The Secret keys it wrote.
      type: list
      elements: str
    same_tokens:
      description: Whether the Secret still holds the token(s) it wrote.
      type: bool
    summary:
      description: One line for the operator.
      type: str
refusal:
  description: Why the tokens to rotate cannot be minted as planned (no groups, or none of the catalog
    admins among them), naming the role variable to set; null when they can.
  returned: success
  type: str
rotate_keys:
  description: The keys of the tokens to rotate.
  returned: success
  type: list
  elements: str
algorithm:
  description: The algorithm tokens were verified with (JWA name), for minting the new ones.
  returned: success
  type: str
  sample: RS512
public_jwks:
  description:
    - The verification keys as JWKS JSON text (public halves only), for verifying new tokens, e.g. as
      an item of O(okera.auth.jwt_token#module:verify_public_key_content).
    - A JWKS rather than the PEM given, since O(public_key_content) is hidden from logs and Ansible
      masks its text wherever it appears in the result.
  returned: success
  type: str
  sample: '{"keys": [{"kty": "RSA", "key_ops": ["verify"], "n": "0vx7ag...", "e": "AQAB"}]}'
current:
  description: What the Secret of O(secret) holds under O(secret.keys).
  returned: when O(secret) is given
  type: dict
  contains:
    data:
      description: The tokens, decoded (key to text). Hide the task's result with C(no_log=true).
      type: dict
    hashes:
      description: SHA-256 of each of them, as C(sha256:<hex>).
      type: dict
    resource_version:
      description: The Secret's resourceVersion.
      type: str
rest:
  description: Where Okera's REST API is, when O(rest_service) is given.
  returned: when O(rest_service) is given
  type: dict
  contains:
    needed:
      description: Whether the cluster is to be checked (a token of O(secret.keys) to rotate, or a rotation to finish);
        the other keys are only set when it is.
      type: bool
    url_found:
      description: Whether it was found.
      type: bool
    url:
      description: Its base URL.
      type: str
    url_from:
      description: C(given), or the Service it was read from.
      type: str
    reason:
      description: Why it was not found.
      type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.okera.auth.plugins.module_utils._k8s.auth import ClusterError, auth_argument_spec, describe_target
from ansible_collections.okera.auth.plugins.module_utils._k8s.lazy import LazyCluster
from ansible_collections.okera.auth.plugins.module_utils.errors import OkeraAuthError
from ansible_collections.okera.auth.plugins.module_utils.keys import (
    CRYPTO_LIBS, CRYPTO_LIBS_IMPORT_ERROR, HAS_CRYPTO_LIBS,
)
from ansible_collections.okera.auth.plugins.module_utils.okera_rest import find_rest_api
from ansible_collections.okera.auth.plugins.module_utils.system_token import (
    ROTATION_MARKER, catalog_admins_of, cluster_keys, plan_rotation, rotation_refusal, unfinished_rotation,
)

_SECRET_SPEC = {"namespace": {"type": "str", "default": "default"}, "name": {"type": "str", "required": True}}


def _read_token_secret(cluster, params):
    """The token Secret's tokens (key to text) and what `current` reports; OkeraAuthError naming the role's variables."""
    where = "Secret %s/%s" % (params["secret"]["namespace"], params["secret"]["name"])
    check = "check system_token_namespace, system_token_secret_name, system_token_secret_keys and the cluster " \
        "(system_token_kubeconfig, system_token_context)"
    secret = cluster.read_secret(params["secret"]["namespace"], params["secret"]["name"])
    if not secret.exists:
        raise OkeraAuthError("%s does not exist: %s" % (where, check))
    keys = [key for key in params["secret"]["keys"] or params["secret_keys"] if key in secret.data]
    tokens = {}
    for key in keys:
        try:
            tokens[key] = secret.data[key].decode("utf-8")
        except UnicodeDecodeError:
            raise OkeraAuthError("%s holds binary data, not a token, under %s: %s" % (where, key, check)) from None
    current = {"data": tokens, "hashes": secret.hashes(keys), "resource_version": secret.resource_version}
    return tokens, secret.annotations.get(ROTATION_MARKER), current


def _read_config(cluster, params):
    """The configuration Secret's three keys (decoded), or None when it does not exist."""
    wanted = (params["config_public_key_key"], params["config_algorithm_key"], params["config_catalog_admins_key"])
    secret = cluster.read_secret(params["config_secret"]["namespace"], params["config_secret"]["name"])
    if not secret.exists:
        return None
    return {key: secret.data[key].decode("utf-8", "replace") for key in wanted if key in secret.data}


def _find_rest_api(cluster, rest):
    """Where Okera's REST API is: the given URL, else the Service's load balancer; never a failure."""
    try:
        url, url_from = find_rest_api(rest["url"], cluster.read_service, rest["namespace"], rest["name"], rest["scheme"],
                                      rest["port"])
    except OkeraAuthError as error:
        return {"url_found": False, "reason": str(error)}
    return {"url_found": True, "url": url, "url_from": url_from}


def main():
    spec = auth_argument_spec()
    spec.update(
        tokens=dict(type="dict", default={}, no_log=True),
        secret_keys=dict(type="list", elements="str", required=True, no_log=False),
        # The Secret's name and keys, not its content.
        secret=dict(type="dict", no_log=False, options=dict(_SECRET_SPEC, keys=dict(type="list", elements="str", no_log=False))),
        config_secret=dict(type="dict", no_log=False, options=_SECRET_SPEC),
        rest_service=dict(type="dict", options=dict(
            url=dict(type="str"), namespace=dict(type="str", default="default"),
            name=dict(type="str", default="cdas-rest-server"), port=dict(type="str"),
            scheme=dict(type="str", choices=["http", "https"], default="http"))),
        private_key_path=dict(type="path"),
        # Hidden: a private key given here by mistake must not reach -vvv output. The keys
        # come back as JWKS text (public_jwks), which is not the text given, so stays unmasked.
        public_key_content=dict(type="list", elements="str", default=[], no_log=True),
        config=dict(type="dict"),
        config_name=dict(type="str", default="the configuration Secret"),
        config_public_key_key=dict(type="str", default="JWT_PUBLIC_KEY", no_log=False),
        config_algorithm_key=dict(type="str", default="JWT_ALGORITHM", no_log=False),
        config_catalog_admins_key=dict(type="str", default="CATALOG_ADMINS", no_log=False),
        catalog_admins=dict(type="list", elements="str"),
        groups=dict(type="list", elements="str", default=[]),
        unfinished_marker=dict(type="str"),
        algorithm=dict(type="str"),
        rotate_before=dict(type="str", default="7d"),
        force=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not HAS_CRYPTO_LIBS:
        module.fail_json(msg=missing_required_lib(CRYPTO_LIBS), exception=CRYPTO_LIBS_IMPORT_ERROR)
    params = module.params
    key_path = params["private_key_path"]
    if key_path and not os.path.isfile(key_path):
        module.fail_json(msg="system_token_private_key_path %s is not a file; give the path of the cluster's signing "
                             "key (PEM)" % key_path)
    rest = params["rest_service"]
    cluster = LazyCluster(params)
    tokens, marker, result = dict(params["tokens"]), params["unfinished_marker"], {}
    config = params["config"]
    try:
        if params["secret"]:
            read, marker, result["current"] = _read_token_secret(cluster, params)
            tokens.update(read)
        if params["config_secret"] and config is None:
            config = _read_config(cluster, params)
        keys = cluster_keys(params["public_key_content"], params["algorithm"], config,
                            params["config_name"], params["config_public_key_key"],
                            params["config_algorithm_key"])
        admins, admins_from = catalog_admins_of(config, params["catalog_admins"], params["config_name"],
                                                params["config_catalog_admins_key"])
        plan = plan_rotation(tokens, params["secret_keys"], keys, params["rotate_before"],
                             params["force"], groups=params["groups"], catalog_admins=admins)
    except ClusterError as error:
        module.fail_json(msg=str(error), cluster=describe_target(params))
    except OkeraAuthError as error:
        module.fail_json(msg=str(error))
    rotate_keys = [entry.key for entry in plan if entry.rotate]
    unfinished = unfinished_rotation(marker, tokens)
    if rest:
        checked_keys = (params["secret"] or {}).get("keys") or (params["secret_keys"] if params["secret"] else [])
        needed = bool(set(rotate_keys) & set(checked_keys)) or unfinished is not None
        result["rest"] = dict(_find_rest_api(cluster, rest), needed=True) if needed else {"needed": False}
    module.exit_json(changed=False, plan=[entry.as_dict() for entry in plan],
                     catalog_admins=admins, catalog_admins_from=admins_from,
                     refusal=rotation_refusal(plan, admins, admins_from), unfinished=unfinished,
                     rotate_keys=rotate_keys, algorithm=keys.algorithm, public_jwks=keys.public_jwks(), **result)


if __name__ == "__main__":
    main()
