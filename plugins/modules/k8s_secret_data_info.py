#!/usr/bin/python
# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read keys of a Kubernetes Secret's data."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_secret_data_info
short_description: Read keys of a Kubernetes Secret's data, decoded
version_added: 0.1.0
description:
  - Reads a Secret and returns its keys, the SHA-256 hash of each value, and its resourceVersion.
  - The decoded values are returned only with O(return_content=true). They are then in the task
    result, so the task must have C(no_log=true) to keep them out of the output and logs.
extends_documentation_fragment:
  - okera.auth.k8s_auth
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads in check mode too; it changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: Running it again changes nothing; it only reads.
    support: full
options:
  name:
    description: Name of the Secret.
    type: str
    required: true
  namespace:
    description: Namespace of the Secret.
    type: str
    default: default
  keys:
    description:
      - Keys to return; all keys when empty. A listed key that the Secret lacks is reported in
        RV(missing_keys) (or fails the task with O(fail_on_missing)).
    type: list
    elements: str
    default: []
  return_content:
    description:
      - Return the decoded values in RV(data). Protect the task with C(no_log=true).
    type: bool
    default: false
  fail_on_missing:
    description: Fail when the Secret, or one of O(keys), does not exist.
    type: bool
    default: true
  annotations:
    description:
      - Names of the Secret's annotations to return in RV(annotations). Only named ones are returned, since
        some (C(kubectl.kubernetes.io/last-applied-configuration)) may hold the whole Secret.
    type: list
    elements: str
    default: []
author:
  - okera.auth maintainers (@okera)
"""

EXAMPLES = r"""
- name: Read the current system token
  okera.auth.k8s_secret_data_info:
    kubeconfig: ~/.kube/okera-prod.yaml
    namespace: okera
    name: secrets
    keys: [SYSTEM_TOKEN_0]
    return_content: true
  no_log: true
  register: current

- name: Only learn whether the token changed since last time (hashes, no values)
  okera.auth.k8s_secret_data_info:
    namespace: okera
    name: secrets
    keys: [SYSTEM_TOKEN_0]
  register: token_hash
"""

RETURN = r"""
exists:
  description: Whether the Secret exists.
  returned: always
  type: bool
key_names:
  description: The keys returned (all of the Secret's, or those of O(keys) that it has).
  returned: always
  type: list
  elements: str
missing_keys:
  description: Keys of O(keys) that the Secret does not have.
  returned: always
  type: list
  elements: str
hashes:
  description: SHA-256 of each returned key's value, as C(sha256:<hex>).
  returned: always
  type: dict
resource_version:
  description: The Secret's resourceVersion.
  returned: when the Secret exists
  type: str
type:
  description: The Secret's type.
  returned: when the Secret exists
  type: str
data:
  description:
    - Decoded values of the returned keys that are UTF-8 text.
  returned: when O(return_content=true)
  type: dict
annotations:
  description: The annotations named in O(annotations) that the Secret has, with their values.
  returned: when the Secret exists
  type: dict
binary_keys:
  description: Returned keys whose values are not UTF-8 text, left out of RV(data).
  returned: when O(return_content=true)
  type: list
  elements: str
"""

from ansible_collections.okera.auth.plugins.module_utils._k8s.module import api_client_for, cluster_module
from ansible_collections.okera.auth.plugins.module_utils._k8s.auth import ClusterError, describe_target
from ansible_collections.okera.auth.plugins.module_utils._k8s.secrets import read_secret


def main() -> None:
    module = cluster_module(
        argument_spec={
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "default": "default"},
            "keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "return_content": {"type": "bool", "default": False},
            "fail_on_missing": {"type": "bool", "default": True},
            "annotations": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    api_client = api_client_for(module)
    try:
        secret = read_secret(api_client, params["namespace"], params["name"])
    except ClusterError as error:
        module.fail_json(msg=str(error), cluster=describe_target(params))
    where = "Secret %s/%s" % (params["namespace"], params["name"])
    if not secret.exists and params["fail_on_missing"]:
        module.fail_json(msg="%s does not exist: check name, namespace and context" % where, exists=False)
    wanted = params["keys"] or sorted(secret.data)
    present = [key for key in wanted if key in secret.data]
    missing = [key for key in wanted if key not in secret.data]
    if missing and secret.exists and params["fail_on_missing"]:
        module.fail_json(msg="%s has no key %s (it has: %s)" % (where, ", ".join(missing), ", ".join(sorted(secret.data)) or "none"),
                         exists=True, missing_keys=missing)
    result = {"changed": False, "exists": secret.exists, "key_names": present, "missing_keys": missing,
              "hashes": secret.hashes(present)}
    if secret.exists:
        result.update(resource_version=secret.resource_version, type=secret.type,
                      annotations={name: secret.annotations[name] for name in params["annotations"]
                                   if name in secret.annotations})
    if params["return_content"]:
        data, binary = {}, []
        for key in present:
            try:
                data[key] = secret.data[key].decode("utf-8")
            except UnicodeDecodeError:
                binary.append(key)
        result.update(data=data, binary_keys=binary)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
